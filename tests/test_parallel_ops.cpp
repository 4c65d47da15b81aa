// Elementwise ops, their backward rules and the bias gradient's column sums run on all threads
// when their arrays are large: each element (each column) is computed alone, so any thread
// count must give the one-thread result bit for bit, values and gradients.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "autograd/autograd.hpp"
#include "autograd/kernels/gemm.hpp"
#include "autograd/kernels/parallel.hpp"

namespace {

// Every value and gradient of a graph whose arrays are large enough to be split: x [128, 640]
// -> linear (+ bias) -> relu -> tanh, times itself -> BCE from logits, plus relu(x) and a
// softplus, so that relu's rule runs both fresh (first to write x's gradient) and adding; and
// the same linear with its ReLU fused (its mask taken with the bias sums, in column slices).
std::vector<ag::Array> results(int threads) {
  ag::set_num_threads(threads);
  ag::Rng rng(5);
  auto normal = [&rng](ag::Shape shape) {
    ag::Array a(shape);
    rng.fill_normal(a);
    return a;
  };
  ag::Parameter w(normal({512, 640})), b(normal({512}));
  ag::Array targets(ag::Shape{128, 512});
  for (std::size_t i = 0; i < targets.size(); ++i) targets.data()[i] = static_cast<float>(i % 11) / 10.0F;
  ag::Tape tape;
  ag::Var x = tape.variable(normal({128, 640}));
  ag::Var wv = tape.parameter(w);
  ag::Var bv = tape.parameter(b);
  ag::Var h = ag::relu(ag::linear(x, wv, bv));
  ag::Var t = ag::tanh(h);
  ag::Var m = t * h;
  ag::Var fused = ag::linear(x, wv, bv, {.relu = true});
  ag::Var loss = ag::bce_with_logits(m, tape.constant(targets), ag::Reduction::batch_mean) +
                 ag::sum(ag::relu(x)) + ag::sum(ag::softplus(x)) + ag::sum(ag::tanh(fused));
  w.zero_grad();
  b.zero_grad();
  tape.backward(loss);
  std::vector<ag::Array> out = {h.value(), t.value(), m.value(), loss.value(), x.grad(), w.grad, b.grad, fused.value()};
  ag::set_num_threads(0);
  return out;
}

// The same bits; or, in a -Dblas=openblas build, whose GEMM (the linear layer's) sums in an
// order that depends on the thread count, the same values to rounding.
bool same_bits(const ag::Array& a, const ag::Array& b) {
  if (a.shape() != b.shape()) return false;
  if (std::string(ag::gemm_name()) == "built-in") return std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
  float scale = 0.0F;
  for (float v : b) scale = std::max(scale, std::abs(v));
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::abs(a.data()[i] - b.data()[i]) > 1e-4F * std::max(scale, 1.0F)) return false;
  return true;
}

}  // namespace

TEST_CASE("elementwise ops and column sums split across threads give the one-thread bits") {
  const std::vector<ag::Array> one = results(1);
  for (int threads : {2, 3}) {
    const std::vector<ag::Array> many = results(threads);
    REQUIRE(many.size() == one.size());
    for (std::size_t i = 0; i < one.size(); ++i) {
      CAPTURE(threads);
      CAPTURE(i);
      CHECK(same_bits(many[i], one[i]));
    }
  }
  // (The comparison compares something: gradients flowed.)
  float total = 0;
  for (float g : one[4]) total += std::abs(g);
  CHECK(total > 0.0F);
}
