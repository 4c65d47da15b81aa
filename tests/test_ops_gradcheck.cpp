// Every op against finite differences, for every input, including the broadcasting cases.
#include <doctest/doctest.h>

#include "autograd/autograd.hpp"

using ag::Array;
using ag::Var;
using Inputs = const std::vector<Var>&;

namespace {

// Values in [lo, hi), away from zero by at least `gap` (kinks and poles live there).
Array sample(std::size_t rows, std::size_t cols, std::uint64_t seed, float lo = -2.0F,
             float hi = 2.0F, float gap = 0.1F) {
  ag::Rng rng(seed);
  Array a({rows, cols});
  for (float& v : a) {
    do v = rng.uniform(lo, hi);
    while (std::abs(v) < gap);
  }
  return a;
}

void check(const std::string& op, const ag::GradcheckFunction& f, const std::vector<Array>& in) {
  ag::GradcheckResult r = ag::gradcheck(op, f, in);
  INFO(r.message());
  CHECK(r.ok);
}

}  // namespace

TEST_CASE("binary ops, same shape, gradient to both inputs") {
  const Array a = sample(3, 4, 1), b = sample(3, 4, 2);
  check("add", [](ag::Tape&, Inputs x) { return x[0] + x[1]; }, {a, b});
  check("sub", [](ag::Tape&, Inputs x) { return x[0] - x[1]; }, {a, b});
  check("mul", [](ag::Tape&, Inputs x) { return x[0] * x[1]; }, {a, b});
  check("div", [](ag::Tape&, Inputs x) { return x[0] / x[1]; }, {a, sample(3, 4, 3, 0.5F, 2.0F)});
}

TEST_CASE("binary ops broadcast a row, a column and a scalar, and reduce the gradient back") {
  const Array m = sample(4, 3, 1);
  const std::vector<std::pair<const char*, Array>> others = {
      {"row [1,3]", sample(1, 3, 2, 0.5F, 2.0F)},
      {"column [4,1]", sample(4, 1, 3, 0.5F, 2.0F)},
      {"scalar [1,1]", sample(1, 1, 4, 0.5F, 2.0F)}};
  for (const auto& other : others) {  // no structured binding: INFO captures it, clang 14 can't
    const char* name = other.first;
    const Array& o = other.second;
    INFO(name);
    check("add", [](ag::Tape&, Inputs x) { return x[0] + x[1]; }, {m, o});
    check("sub (broadcast on the left)", [](ag::Tape&, Inputs x) { return x[1] - x[0]; }, {m, o});
    check("mul", [](ag::Tape&, Inputs x) { return x[0] * x[1]; }, {m, o});
    check("div", [](ag::Tape&, Inputs x) { return x[0] / x[1]; }, {m, o});
    check("div (broadcast numerator)", [](ag::Tape&, Inputs x) { return x[1] / x[0]; }, {m, o});
  }
  // Both sides broadcast: [4,1] with [1,3] -> [4,3].
  check("mul outer", [](ag::Tape&, Inputs x) { return x[0] * x[1]; },
        {sample(4, 1, 5), sample(1, 3, 6)});
  check("broadcast_to", [](ag::Tape&, Inputs x) { return ag::broadcast_to(x[0], {5, 3}); },
        {sample(1, 3, 7)});
}

TEST_CASE("neg and the ops with a scalar") {
  const Array a = sample(2, 5, 1, 0.5F, 2.0F);
  check("neg", [](ag::Tape&, Inputs x) { return -x[0]; }, {a});
  check("x + c", [](ag::Tape&, Inputs x) { return x[0] + 2.5F; }, {a});
  check("c - x", [](ag::Tape&, Inputs x) { return 2.5F - x[0]; }, {a});
  check("x * c", [](ag::Tape&, Inputs x) { return x[0] * -3.0F; }, {a});
  check("x / c", [](ag::Tape&, Inputs x) { return x[0] / 4.0F; }, {a});
  check("c / x", [](ag::Tape&, Inputs x) { return 2.0F / x[0]; }, {a});
}

TEST_CASE("matmul, transpose, linear") {
  check("matmul", [](ag::Tape&, Inputs x) { return ag::matmul(x[0], x[1]); },
        {sample(3, 4, 1), sample(4, 5, 2)});
  check("transpose", [](ag::Tape&, Inputs x) { return ag::transpose(x[0]); }, {sample(3, 4, 3)});
  check("linear", [](ag::Tape&, Inputs x) { return ag::linear(x[0], x[1], x[2]); },
        {sample(6, 4, 4), sample(3, 4, 5), sample(1, 3, 6)});
  check("linear without bias", [](ag::Tape&, Inputs x) { return ag::linear(x[0], x[1]); },
        {sample(6, 4, 7), sample(3, 4, 8)});
}

TEST_CASE("sum and mean, whole and along each axis") {
  const Array a = sample(4, 3, 1);
  check("sum", [](ag::Tape&, Inputs x) { return ag::sum(x[0]); }, {a});
  check("sum axis 0", [](ag::Tape&, Inputs x) { return ag::sum(x[0], 0); }, {a});
  check("sum axis 1", [](ag::Tape&, Inputs x) { return ag::sum(x[0], 1); }, {a});
  check("mean", [](ag::Tape&, Inputs x) { return ag::mean(x[0]); }, {a});
  check("mean axis 0", [](ag::Tape&, Inputs x) { return ag::mean(x[0], 0); }, {a});
  check("mean axis 1", [](ag::Tape&, Inputs x) { return ag::mean(x[0], 1); }, {a});
}

TEST_CASE("reshape, slice, concat") {
  check("reshape", [](ag::Tape&, Inputs x) { return ag::reshape(x[0], {2, 6}) * x[1]; },
        {sample(3, 4, 1), sample(2, 6, 2)});
  check("slice", [](ag::Tape&, Inputs x) { return ag::slice(x[0], 1, 4); }, {sample(3, 5, 3)});
  check("concat", [](ag::Tape&, Inputs x) { return ag::concat(x[0], x[1]); },
        {sample(3, 2, 4), sample(3, 4, 5)});
}

TEST_CASE("unary math and activations") {
  const Array a = sample(3, 4, 1, -3.0F, 3.0F);
  const Array positive = sample(3, 4, 2, 0.2F, 3.0F);
  check("exp", [](ag::Tape&, Inputs x) { return ag::exp(x[0]); }, {a});
  check("log", [](ag::Tape&, Inputs x) { return ag::log(x[0]); }, {positive});
  check("square", [](ag::Tape&, Inputs x) { return ag::square(x[0]); }, {a});
  check("sqrt", [](ag::Tape&, Inputs x) { return ag::sqrt(x[0]); }, {positive});
  check("relu", [](ag::Tape&, Inputs x) { return ag::relu(x[0]); }, {a});
  check("sigmoid", [](ag::Tape&, Inputs x) { return ag::sigmoid(x[0]); }, {a});
  check("tanh", [](ag::Tape&, Inputs x) { return ag::tanh(x[0]); }, {a});
  check("softplus", [](ag::Tape&, Inputs x) { return ag::softplus(x[0]); }, {a});
  check("log_sigmoid", [](ag::Tape&, Inputs x) { return ag::log_sigmoid(x[0]); }, {a});
}

TEST_CASE("losses, every reduction, gradient to every input") {
  const Array logits = sample(3, 4, 1, -3.0F, 3.0F);
  const Array targets = sample(3, 4, 2, 0.0F, 1.0F, 0.0F);
  const Array logvar = sample(3, 4, 3, -1.0F, 1.0F, 0.0F);
  for (auto r : {ag::Reduction::none, ag::Reduction::sum, ag::Reduction::mean,
                 ag::Reduction::batch_mean}) {
    INFO("reduction " << static_cast<int>(r));
    check("bce_with_logits", [r](ag::Tape&, Inputs x) { return ag::bce_with_logits(x[0], x[1], r); },
          {logits, targets});
    check("mse_loss", [r](ag::Tape&, Inputs x) { return ag::mse_loss(x[0], x[1], r); },
          {logits, targets});
    check("gaussian_nll", [r](ag::Tape&, Inputs x) { return ag::gaussian_nll(x[0], x[1], x[2], r); },
          {targets, logits, logvar});
    check("gaussian_nll, logvar [1, D]",
          [r](ag::Tape&, Inputs x) { return ag::gaussian_nll(x[0], x[1], x[2], r); },
          {targets, logits, sample(1, 4, 4, -1.0F, 1.0F, 0.0F)});
    check("kl_to_standard_normal",
          [r](ag::Tape&, Inputs x) { return ag::kl_to_standard_normal(x[0], x[1], r); },
          {logits, logvar});
  }
}

TEST_CASE("reparameterize with eps held fixed: gradient to mu and logvar") {
  const Array eps = sample(3, 2, 9, -2.0F, 2.0F, 0.0F);
  check("reparameterize", [&eps](ag::Tape&, Inputs x) { return ag::reparameterize(x[0], x[1], eps); },
        {sample(3, 2, 1), sample(3, 2, 2, -1.0F, 1.0F, 0.0F)});
}

TEST_CASE("a composition: a small two-layer network with a loss") {
  check("mlp",
        [](ag::Tape&, Inputs x) {
          Var h = ag::tanh(ag::linear(x[0], x[1], x[2]));
          return ag::bce_with_logits(ag::matmul(h, x[3]), ag::sigmoid(x[0]), ag::Reduction::sum);
        },
        {sample(5, 3, 1), sample(4, 3, 2), sample(1, 4, 3), sample(4, 3, 4)});
}
