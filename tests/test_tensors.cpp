// Tensors of any rank: broadcasting, reductions over axes, shape ops, batched matmul. Values
// are checked against hand-computed results, gradients against finite differences.
#include <doctest/doctest.h>
#include <fmt/ranges.h>

#include "autograd/autograd.hpp"
#include "tests/gradcheck_helpers.hpp"

using ag::Array;
using ag::Shape;
using ag::Var;
using testing::check;
using testing::Inputs;
using testing::sample;

TEST_CASE("an Array holds any rank; a braced list of sizes is a shape") {
  const std::size_t n = 3;
  CHECK(Array({n, 2}).shape() == Shape{3, 2});
  CHECK(Array({2, 3, 4, 5}).size() == 120);
  CHECK(Array{1.0F, 2.0F, 3.0F}.shape() == Shape{3});
  CHECK(Array{{{1.0F, 2.0F}, {3.0F, 4.0F}}}.shape() == Shape{1, 2, 2});
  CHECK(ag::to_string(Shape{2, 1, 28, 28}) == "[2, 1, 28, 28]");
  const Array sum = Array{{1.0F, 2.0F}} + Array{{3.0F, 4.0F}};  // xtensor expressions still work
  CHECK(sum(0, 1) == 6.0F);
}

TEST_CASE("broadcasting aligns shapes at the last dimension, as NumPy does") {
  CHECK(ag::broadcast_shapes("t", {4, 1, 3}, {5, 1}) == Shape{4, 5, 3});
  CHECK(ag::broadcast_shapes("t", {3}, {2, 3}) == Shape{2, 3});
  CHECK_THROWS_AS(ag::broadcast_shapes("t", {2, 3}, {4, 3}), ag::ShapeError);
  ag::Tape tape;
  Var a = tape.constant(ag::Array(xt::reshape_view(Array{1.0F, 2.0F}, {2, 1, 1})));  // [2, 1, 1]
  Var b = tape.constant(Array{10.0F, 20.0F, 30.0F});  // [3]
  Var c = a + b;
  REQUIRE(c.shape() == Shape{2, 1, 3});
  CHECK(c.value()(1, 0, 2) == 32.0F);
}

TEST_CASE("binary ops broadcast across ranks, the gradient reduced to each input's shape") {
  const std::vector<std::pair<Shape, Shape>> pairs = {
      {{2, 3, 4}, {4}}, {{2, 3, 4}, {3, 1}}, {{2, 1, 4}, {3, 1}}, {{2, 3, 2, 2}, {3, 1, 1}}, {{1}, {2, 3}}};
  for (const auto& pair : pairs) {
    const Shape& sa = pair.first;  // not a structured binding: INFO captures it, clang 14 refuses
    const Shape& sb = pair.second;
    INFO(ag::to_string(sa) << " with " << ag::to_string(sb));
    const Array a = sample(sa, 1), b = sample(sb, 2, 0.5F, 2.0F);
    check("add", [](ag::Tape&, Inputs x) { return x[0] + x[1]; }, {a, b});
    check("mul", [](ag::Tape&, Inputs x) { return x[0] * x[1]; }, {a, b});
    check("div", [](ag::Tape&, Inputs x) { return x[0] / x[1]; }, {a, b});
    check("sub, reversed", [](ag::Tape&, Inputs x) { return x[1] - x[0]; }, {a, b});
  }
  check("broadcast_to", [](ag::Tape&, Inputs x) { return ag::broadcast_to(x[0], {2, 3, 4}); }, {sample({3, 1}, 3)});
}

TEST_CASE("sum, mean, max, min, var, std and logsumexp over each axis, several axes, with and without keepdim") {
  // Distinct values at least 0.13 apart, so that no finite-difference step crosses a tie of max.
  Array a({2, 3, 4});
  for (std::size_t k = 0; k < a.size(); ++k) a.data()[k] = static_cast<float>((k * 7) % 24) * 0.13F - 1.5F;
  const std::vector<ag::Axes> axes_list = {0, 1, 2, -1, {0, 2}, {1, 2}, {0, 1, 2}};
  for (const ag::Axes& axes : axes_list) {
    for (bool keepdim : {false, true}) {
      INFO("axes " << fmt::format("{}", fmt::join(axes, ",")) << " keepdim " << keepdim);
      check("sum", [&](ag::Tape&, Inputs x) { return ag::sum(x[0], axes, keepdim); }, {a});
      check("mean", [&](ag::Tape&, Inputs x) { return ag::mean(x[0], axes, keepdim); }, {a});
      check("max", [&](ag::Tape&, Inputs x) { return ag::max(x[0], axes, keepdim); }, {a});
      check("min", [&](ag::Tape&, Inputs x) { return ag::min(x[0], axes, keepdim); }, {a});
      check("var", [&](ag::Tape&, Inputs x) { return ag::var(x[0], axes, keepdim); }, {a});
      check("var, correction 0", [&](ag::Tape&, Inputs x) { return ag::var(x[0], axes, keepdim, 0); }, {a});
      check("std", [&](ag::Tape&, Inputs x) { return ag::std(x[0], axes, keepdim); }, {a});
      check("logsumexp", [&](ag::Tape&, Inputs x) { return ag::logsumexp(x[0], axes, keepdim); }, {a});
    }
  }
  ag::Tape tape;
  Var x = tape.constant(Array{{{1.0F, 2.0F}, {3.0F, 4.0F}}, {{5.0F, 6.0F}, {7.0F, 8.0F}}});
  CHECK(ag::sum(x, {0, 2}).shape() == Shape{2});
  CHECK(ag::sum(x, {0, 2}).value()(1) == 3.0F + 4.0F + 7.0F + 8.0F);
  CHECK(ag::sum(x, {0, 2}, true).shape() == Shape{1, 2, 1});
  CHECK(ag::mean(x, -1).value()(1, 0) == 5.5F);
  CHECK(ag::max(x, 0).value()(1, 1) == 8.0F);
  CHECK(ag::min(x, 0).value()(1, 1) == 4.0F);
  CHECK(ag::min(x, {1, 2}).value()(1) == 5.0F);
  // over axis 0 every pair differs by 4: sample variance 8, population variance 4
  CHECK(ag::var(x, 0).value()(0, 1) == doctest::Approx(8.0));
  CHECK(ag::var(x, 0, false, 0).value()(0, 1) == doctest::Approx(4.0));
  CHECK(ag::std(x, {0, 1, 2}).item() == doctest::Approx(std::sqrt(6.0)));  // 1..8: sum of squares 42, / 7
  CHECK(std::isnan(ag::var(tape.constant(Array{{1.0F}}), 1).item()));  // one element, correction 1: 0 / 0
  CHECK(ag::logsumexp(x, 2).value()(0, 0) == doctest::Approx(2.0 + std::log1p(std::exp(-1.0))));
  CHECK(ag::sum(x).shape() == Shape{1, 1, 1});
  CHECK_THROWS_AS(ag::sum(x, 3), ag::ShapeError);
  CHECK_THROWS_AS(ag::sum(x, {1, 1}), ag::ShapeError);
}

TEST_CASE("logsumexp does not overflow; max and min share their gradient between tied extremes") {
  ag::Tape tape;
  Var x = tape.variable(Array{{1000.0F, 1000.0F, -5.0F}});
  Var y = ag::logsumexp(x, 1);
  CHECK(y.item() == doctest::Approx(1000.0 + std::log(2.0)));
  Var m = ag::max(x, 1);
  tape.backward(m);
  CHECK(x.grad()(0, 0) == 0.5F);  // as torch.amax
  CHECK(x.grad()(0, 1) == 0.5F);
  CHECK(x.grad()(0, 2) == 0.0F);
  ag::Tape tape2;
  Var w = tape2.variable(Array{{-5.0F, 3.0F, -5.0F}});
  tape2.backward(ag::min(w, 1));
  CHECK(w.grad()(0, 0) == 0.5F);
  CHECK(w.grad()(0, 1) == 0.0F);
  CHECK(w.grad()(0, 2) == 0.5F);
}

TEST_CASE("reshape, view, flatten, unsqueeze, squeeze") {
  const Array a = sample({2, 3, 4}, 1);
  check("view", [](ag::Tape&, Inputs x) { return ag::view(x[0], {6, 4}) * x[1]; }, {a, sample({6, 4}, 2)});
  check("flatten 1..", [](ag::Tape&, Inputs x) { return ag::flatten(x[0], 1) * x[1]; }, {a, sample({2, 12}, 3)});
  ag::Tape tape;
  Var x = tape.constant(a);
  CHECK(ag::flatten(x).shape() == Shape{24});
  CHECK(ag::flatten(x, 0, 1).shape() == Shape{6, 4});
  CHECK(ag::unsqueeze(x, 1).shape() == Shape{2, 1, 3, 4});
  CHECK(ag::unsqueeze(x, -1).shape() == Shape{2, 3, 4, 1});
  CHECK(ag::squeeze(ag::unsqueeze(x, 0), 0).shape() == Shape{2, 3, 4});
  CHECK(ag::squeeze(x, 0).shape() == Shape{2, 3, 4});  // size 2: unchanged, as in PyTorch
  CHECK_THROWS_AS(ag::reshape(x, {5, 5}), ag::ShapeError);
}

TEST_CASE("permute and transpose") {
  const Array a = sample({2, 3, 4}, 1);
  check("permute", [](ag::Tape&, Inputs x) { return ag::permute(x[0], {2, 0, 1}); }, {a});
  check("transpose(0, 2)", [](ag::Tape&, Inputs x) { return ag::transpose(x[0], 0, 2); }, {a});
  check("transpose", [](ag::Tape&, Inputs x) { return ag::transpose(x[0]); }, {a});
  ag::Tape tape;
  Var y = ag::permute(tape.constant(a), {2, 0, 1});
  REQUIRE(y.shape() == Shape{4, 2, 3});
  CHECK(y.value()(3, 1, 2) == a(1, 2, 3));
  CHECK_THROWS_AS(ag::permute(tape.constant(a), {0, 0, 1}), ag::ShapeError);
}

TEST_CASE("slice along any axis") {
  const Array a = sample({3, 4, 5}, 1);
  for (int axis : {0, 1, 2}) {
    INFO("axis " << axis);
    check("slice", [axis](ag::Tape&, Inputs x) { return ag::slice(x[0], axis, 1, 3); }, {a});
  }
  ag::Tape tape;
  Var y = ag::slice(tape.constant(a), 1, 1, 3);
  REQUIRE(y.shape() == Shape{3, 2, 5});
  CHECK(y.value()(2, 1, 4) == a(2, 2, 4));
  // As Python's a[:, begin:end]: past the end cut to it, an empty range an empty result (both
  // were refused), and the gradient reaches the rows inside only.
  CHECK(ag::slice(tape.constant(a), 1, 2, 9).shape() == Shape{3, 2, 5});
  CHECK(ag::slice(tape.constant(a), 1, 5, 9).shape() == Shape{3, 0, 5});
  CHECK(ag::slice(tape.constant(a), 2, 3, 1).shape() == Shape{3, 4, 0});
  Var x = tape.variable(a);
  tape.backward(ag::sum(ag::slice(x, 1, 3, 9)) + ag::sum(ag::slice(x, 0, 2, 2)));
  CHECK(x.grad()(0, 3, 0) == 1.0F);
  CHECK(x.grad()(0, 2, 0) == 0.0F);
}

TEST_CASE("concat and stack of N inputs along any axis") {
  const Array a = sample({2, 3, 4}, 1), b = sample({2, 3, 4}, 2), c = sample({2, 3, 4}, 3);
  for (int axis : {0, 1, 2, -1}) {
    INFO("axis " << axis);
    check("concat", [axis](ag::Tape&, Inputs x) { return ag::concat({x[0], x[1], x[2]}, axis); }, {a, b, c});
    check("stack", [axis](ag::Tape&, Inputs x) { return ag::stack({x[0], x[1], x[2]}, axis); }, {a, b, c});
  }
  check("concat of different widths", [](ag::Tape&, Inputs x) { return ag::concat({x[0], x[1]}, 1); },
        {sample({2, 1, 4}, 4), sample({2, 3, 4}, 5)});
  // More inputs than a node takes: joined in groups, same values and gradients.
  std::vector<Array> many;
  for (std::uint64_t i = 0; i < 11; ++i) many.push_back(sample({2, 2}, 10 + i));
  check("concat of 11", [](ag::Tape&, Inputs x) { return ag::concat(x, 0); }, many);
  check("stack of 11", [](ag::Tape&, Inputs x) { return ag::stack(x, 1); }, many);
  ag::Tape tape;
  std::vector<Var> vars;
  for (const Array& m : many) vars.push_back(tape.constant(m));
  Var s = ag::stack(vars, 1);
  REQUIRE(s.shape() == Shape{2, 11, 2});
  CHECK(s.value()(1, 9, 0) == many[9](1, 0));
  CHECK_THROWS_AS(ag::concat({vars[0], tape.constant(Array({3, 3}))}, 0), ag::ShapeError);
}

TEST_CASE("concat and stack behind an empty dimension: an empty result and no gradient (the backward divided by 0)") {
  ag::Tape tape;
  Var a = tape.variable(Array({0, 2})), b = tape.variable(Array({0, 2}));
  Var stacked = ag::stack({a, b}, 1);
  CHECK(stacked.shape() == Shape{0, 2, 2});
  tape.backward(stacked, Array({0, 2, 2}));  // SIGFPE
  CHECK(a.grad().shape() == Shape{0, 2});
  Var joined = ag::concat({a, b}, 1);
  CHECK(joined.shape() == Shape{0, 4});
  tape.backward(joined, Array({0, 4}));
  CHECK(b.grad().shape() == Shape{0, 2});
}

TEST_CASE("index_select and gather scatter-add the gradient over repeated indices") {
  const Array a = sample({4, 3}, 1);
  const Array rows{2.0F, 0.0F, 2.0F, 2.0F};
  check("index_select axis 0",
        [&](ag::Tape& t, Inputs x) { return ag::index_select(x[0], 0, t.constant(rows)); }, {a});
  check("index_select axis 1",
        [&](ag::Tape& t, Inputs x) { return ag::index_select(x[0], 1, t.constant(Array{1.0F, 1.0F})); }, {a});
  const Array index{{0.0F, 0.0F}, {2.0F, 1.0F}, {1.0F, 1.0F}, {2.0F, 0.0F}};  // [4, 2] along axis 1
  check("gather axis 1", [&](ag::Tape& t, Inputs x) { return ag::gather(x[0], 1, t.constant(index)); }, {a});
  check("gather axis 0", [&](ag::Tape& t, Inputs x) { return ag::gather(x[0], 0, t.constant(Array{{3.0F, 3.0F, 0.0F}})); },
        {a});
  ag::Tape tape;
  Var x = tape.variable(a);
  Var y = ag::index_select(x, 0, tape.constant(rows));
  CHECK(y.value()(3, 1) == a(2, 1));
  tape.backward(ag::sum(y));
  CHECK(x.grad()(2, 0) == 3.0F);  // picked three times
  CHECK(x.grad()(1, 0) == 0.0F);
  Var g = ag::gather(tape.constant(a), 1, tape.constant(index));
  CHECK(g.value()(1, 0) == a(1, 2));
  CHECK_THROWS_AS(ag::index_select(x, 0, tape.constant(Array{4.0F})), ag::ShapeError);
  CHECK_THROWS_AS(ag::gather(x, 1, tape.constant(Array{{0.5F}})), ag::ShapeError);
}

TEST_CASE("matmul: 2-D, batched 3-D, and a shared operand on either side") {
  check("[B,M,K] x [B,K,N]", [](ag::Tape&, Inputs x) { return ag::matmul(x[0], x[1]); },
        {sample({2, 3, 4}, 1), sample({2, 4, 5}, 2)});
  check("[B,M,K] x [K,N]", [](ag::Tape&, Inputs x) { return ag::matmul(x[0], x[1]); },
        {sample({2, 3, 4}, 3), sample({4, 5}, 4)});
  check("[M,K] x [B,K,N]", [](ag::Tape&, Inputs x) { return ag::matmul(x[0], x[1]); },
        {sample({3, 4}, 5), sample({2, 4, 5}, 6)});
  check("[1,M,K] x [B,K,N]", [](ag::Tape&, Inputs x) { return ag::matmul(x[0], x[1]); },
        {sample({1, 3, 4}, 7), sample({2, 4, 5}, 8)});
  check("linear on [B, T, in]", [](ag::Tape&, Inputs x) { return ag::linear(x[0], x[1], x[2]); },
        {sample({2, 3, 4}, 9), sample({5, 4}, 10), sample({5}, 11)});
  ag::Tape tape;
  Var a = tape.constant(sample({2, 3, 4}, 1)), b = tape.constant(sample({2, 4, 5}, 2));
  Var c = ag::matmul(a, b);
  REQUIRE(c.shape() == Shape{2, 3, 5});
  double expected = 0.0;
  for (std::size_t k = 0; k < 4; ++k) expected += a.value()(1, 2, k) * b.value()(1, k, 3);
  CHECK(c.value()(1, 2, 3) == doctest::Approx(expected).epsilon(1e-5));
  CHECK_THROWS_AS(ag::matmul(a, tape.constant(Array({3, 4, 5}))), ag::ShapeError);
}

TEST_CASE("matmul as torch.matmul: batch dimensions of any rank broadcast; 1-D operands") {
  check("[2,1,M,K] x [3,K,N]", [](ag::Tape&, Inputs x) { return ag::matmul(x[0], x[1]); },
        {sample({2, 1, 3, 4}, 1), sample({3, 4, 5}, 2)});
  check("[M,K] x [K]", [](ag::Tape&, Inputs x) { return ag::matmul(x[0], x[1]); },
        {sample({3, 4}, 3), sample({4}, 4)});
  check("[K] x [B,K,N]", [](ag::Tape&, Inputs x) { return ag::matmul(x[0], x[1]); },
        {sample({4}, 5), sample({2, 4, 5}, 6)});
  ag::Tape tape;
  CHECK(ag::matmul(tape.constant(Array({2, 1, 3, 4})), tape.constant(Array({3, 4, 5}))).shape() == Shape{2, 3, 3, 5});
  CHECK(ag::matmul(tape.constant(Array({3, 4})), tape.constant(Array({4}))).shape() == Shape{3});
  // A batch of 1 against one of 0 broadcasts to 0 (it took 1, and read past the empty operand).
  CHECK(ag::matmul(tape.constant(Array({1, 2, 2})), tape.constant(Array({0, 2, 3}))).shape() == Shape{0, 2, 3});
  CHECK_THROWS_WITH_AS(ag::matmul(tape.constant(Array({4})), tape.constant(Array({4}))),
                       doctest::Contains("use sum(a * b)"), ag::ShapeError);
  CHECK_THROWS_AS(ag::matmul(tape.constant(Array({2, 3, 4})), tape.constant(Array({3, 4, 5}))), ag::ShapeError);
}

TEST_CASE("broadcast and bias gradients sum 10^6 terms in double: exact to 1e-6") {
  // In float32 one element at a time, 10^6 ones sum to 1.009e6 / 1e6 (PyTorch: 1.0000001).
  constexpr std::size_t kRows = 1000, kCols = 1000;
  ag::Tape tape;
  Var x = tape.variable(Array{{1.0F}});
  Var big = tape.constant(xt::ones<float>({kRows, kCols}));
  tape.backward(ag::mean(ag::mul(x, big)));
  CHECK(x.grad()(0, 0) == doctest::Approx(1.0).epsilon(1e-6));

  // linear's bias: d mean(x Wᵀ + b) / db = 1 over 10^6 rows.
  ag::Tape t2;
  Var input = t2.constant(xt::zeros<float>({kRows * kCols, std::size_t{1}}));
  Var w = t2.variable(Array{{0.5F}});
  Var b = t2.variable(Array{0.25F});
  t2.backward(ag::mean(ag::linear(input, w, b)));
  CHECK(b.grad()(0) == doctest::Approx(1.0).epsilon(1e-6));
}
