// The checker itself must be able to fail: feed it ops whose backward rules are wrong.
#include <doctest/doctest.h>

#include "autograd/autograd.hpp"
#include "autograd/ops/elementwise.hpp"

using ag::Array;
using ag::Var;

namespace {

// square with the classic slip dy/dx = x instead of 2x.
void wrong_square_backward(ag::Tape& t, const ag::Node& n) {
  ag::detail::unary_backward(t, n, [](float x, float) { return x; });
}
Var wrong_square(Var x) {
  return ag::detail::unary_forward("wrong_square", x, wrong_square_backward,
                                   [](float v) { return v * v; });
}

// mul whose rule forgets the second input's gradient for the last column only: a bug
// that a check of a single output element could miss.
void partly_wrong_mul_backward(ag::Tape& t, const ag::Node& n) {
  ag::Node& a = t.node(n.inputs[0]);
  ag::Node& b = t.node(n.inputs[1]);
  const std::size_t cols = n.value().shape()[1];
  for (std::size_t i = 0; i < n.value().size(); ++i) {
    a.grad().data()[i] += n.grad().data()[i] * b.value().data()[i];
    if (i % cols != cols - 1) b.grad().data()[i] += n.grad().data()[i] * a.value().data()[i];
  }
}
Var partly_wrong_mul(Var a, Var b) {
  return ag::detail::binary_forward("partly_wrong_mul", a, b, partly_wrong_mul_backward,
                                    [](float x, float y) { return x * y; });
}

const Array kInput = {{0.5F, -1.25F, 1.5F}, {2.0F, 0.75F, -0.5F}};

}  // namespace

TEST_CASE("gradcheck catches a wrong derivative") {
  auto r = ag::gradcheck("wrong_square", [](ag::Tape&, const std::vector<Var>& x) {
    return wrong_square(x[0]);
  }, {kInput});
  INFO(r.message());
  CHECK_FALSE(r.ok);
  CHECK(r.worst_ratio > 100.0);
  // The worst element is where |x| is largest: 2.0 at [1, 0]. Both sides carry the same
  // projection weight, and the wrong rule gives half the true derivative.
  CHECK(r.index == std::vector<std::size_t>{1, 0});
  CHECK(r.message().find("element [1, 0]") != std::string::npos);
  CHECK(r.analytic / r.numeric == doctest::Approx(0.5).epsilon(1e-4));
  CHECK(r.message().find("FAILED") != std::string::npos);
  CHECK(r.message().find("wrong_square") != std::string::npos);
}

TEST_CASE("gradcheck catches a rule that is wrong for one input in one column only") {
  auto r = ag::gradcheck("partly_wrong_mul", [](ag::Tape&, const std::vector<Var>& x) {
    return partly_wrong_mul(x[0], x[1]);
  }, {kInput, kInput * 2.0F});
  INFO(r.message());
  CHECK_FALSE(r.ok);
  CHECK(r.input == 1);
  CHECK(r.index.back() == 2);
}

TEST_CASE("the same checker passes the correct rules") {
  auto r = ag::gradcheck("square", [](ag::Tape&, const std::vector<Var>& x) {
    return ag::square(x[0]);
  }, {kInput});
  INFO(r.message());
  CHECK(r.ok);
  CHECK(r.worst_ratio < 0.1);
}
