// Every op against finite differences, for every input, including the broadcasting cases.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "autograd/autograd.hpp"
#include "tests/gradcheck_helpers.hpp"

using ag::Array;
using ag::Var;
using testing::Inputs;

using testing::check;
using testing::sample;

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
  check("sum axis 0", [](ag::Tape&, Inputs x) { return ag::sum(x[0], 0, true); }, {a});
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
  check("rsqrt", [](ag::Tape&, Inputs x) { return ag::rsqrt(x[0]); }, {positive});
  check("reciprocal", [](ag::Tape&, Inputs x) { return ag::reciprocal(x[0]); }, {positive});
  check("reciprocal of negatives", [](ag::Tape&, Inputs x) { return ag::reciprocal(-x[0]); }, {positive});
  check("log1p", [](ag::Tape&, Inputs x) { return ag::log1p(x[0]); }, {positive});
  check("expm1", [](ag::Tape&, Inputs x) { return ag::expm1(x[0]); }, {a});
  check("sin", [](ag::Tape&, Inputs x) { return ag::sin(x[0]); }, {a});
  check("cos", [](ag::Tape&, Inputs x) { return ag::cos(x[0]); }, {a});
  check("relu", [](ag::Tape&, Inputs x) { return ag::relu(x[0]); }, {a});
  check("sigmoid", [](ag::Tape&, Inputs x) { return ag::sigmoid(x[0]); }, {a});
  check("tanh", [](ag::Tape&, Inputs x) { return ag::tanh(x[0]); }, {a});
  check("softplus", [](ag::Tape&, Inputs x) { return ag::softplus(x[0]); }, {a});
  check("log_sigmoid", [](ag::Tape&, Inputs x) { return ag::log_sigmoid(x[0]); }, {a});
}

TEST_CASE("bce_with_logits' values, vectorized (its own log1p on [0, 1]), to float rounding of the exact loss") {
  // Logits over [-40, 40] in small steps (past where e^-|l| underflows to subnormals), with
  // targets 0, 1 and between: each value within a few float ulps of softplus(l) - l t in double,
  // measured against the size of its terms (l t cancels max(l, 0) when t = 1).
  constexpr std::size_t kCount = 64001;
  Array logits(ag::Shape{3, kCount}), targets(ag::Shape{3, kCount});
  for (std::size_t r = 0; r < 3; ++r)
    for (std::size_t i = 0; i < kCount; ++i) {
      logits(r, i) = -40.0F + 80.0F * static_cast<float>(i) / static_cast<float>(kCount - 1);
      targets(r, i) = r == 2 ? 0.3F : static_cast<float>(r);
    }
  ag::Tape tape;
  const Array loss = ag::bce_with_logits(tape.constant(logits), tape.constant(targets), ag::Reduction::none).value();
  double worst = 0;
  for (std::size_t r = 0; r < 3; ++r)
    for (std::size_t i = 0; i < kCount; ++i) {
      const double l = logits(r, i), t = targets(r, i);
      const double exact = std::max(l, 0.0) + std::log1p(std::exp(-std::abs(l))) - l * t;
      const double scale = std::max(l, 0.0) + std::log1p(std::exp(-std::abs(l))) + std::abs(l * t);
      worst = std::max(worst, std::abs(loss(r, i) - exact) / scale);
    }
  CHECK(worst < 4 * 6e-8);
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

TEST_CASE("pow, abs, clamp, leaky_relu, elu, gelu, silu") {
  const Array a = sample(3, 4, 1, -3.0F, 3.0F);
  const Array positive = sample(3, 4, 2, 0.2F, 3.0F);
  check("pow 3", [](ag::Tape&, Inputs x) { return ag::pow(x[0], 3.0F); }, {a});
  check("pow -1.5", [](ag::Tape&, Inputs x) { return ag::pow(x[0], -1.5F); }, {positive});
  check("abs", [](ag::Tape&, Inputs x) { return ag::abs(x[0]); }, {a});
  // clamp's bounds sit between sample values (which avoid [-0.1, 0.1] and the bounds' neighbourhood).
  const Array spread = {{-2.5F, -1.2F, -0.5F, 0.3F}, {0.9F, 1.6F, 2.4F, -2.9F}};
  check("clamp", [](ag::Tape&, Inputs x) { return ag::clamp(x[0], -1.0F, 1.0F); }, {spread});
  check("leaky_relu", [](ag::Tape&, Inputs x) { return ag::leaky_relu(x[0], 0.2F); }, {a});
  check("elu", [](ag::Tape&, Inputs x) { return ag::elu(x[0], 0.7F); }, {a});
  check("gelu", [](ag::Tape&, Inputs x) { return ag::gelu(x[0]); }, {a});
  check("silu", [](ag::Tape&, Inputs x) { return ag::silu(x[0]); }, {a});
  ag::Tape tape;
  Var c = ag::clamp(tape.variable(spread), -1.0F, 1.0F);
  CHECK(c.value()(0, 0) == -1.0F);
  CHECK(c.value()(0, 3) == 0.3F);
}

TEST_CASE("minimum, maximum and where, both inputs, with broadcasting") {
  const Array a = sample(3, 4, 1), b = sample(1, 4, 2);  // distinct values: no ties
  check("minimum", [](ag::Tape&, Inputs x) { return ag::minimum(x[0], x[1]); }, {a, b});
  check("maximum", [](ag::Tape&, Inputs x) { return ag::maximum(x[0], x[1]); }, {a, b});
  const Array mask = {{1.0F, 0.0F, 0.0F, 1.0F}};
  check("where", [&](ag::Tape& t, Inputs x) { return ag::where(t.constant(mask), x[0], x[1]); }, {a, b});
  ag::Tape tape;
  Var w = ag::where(tape.constant(mask), tape.constant(a), tape.constant(b));
  CHECK(w.value()(2, 0) == a(2, 0));
  CHECK(w.value()(2, 1) == b(0, 1));
}

TEST_CASE("minimum and maximum pass a NaN on either side on, with the gradient, as PyTorch does") {
  // std::max(1, nan) is 1: a NaN in the second operand vanished from the value.
  const float nan = std::nanf("");
  for (const bool is_max : {true, false}) {
    INFO((is_max ? "maximum" : "minimum"));
    ag::Tape tape;
    Var a = tape.variable(Array{nan, 1.0F, 2.0F, 3.0F}), b = tape.variable(Array{1.0F, nan, 2.0F, 0.0F});
    Var y = is_max ? ag::maximum(a, b) : ag::minimum(a, b);
    CHECK(std::isnan(y.value()(0)));
    CHECK(std::isnan(y.value()(1)));
    CHECK(y.value()(2) == 2.0F);
    CHECK(y.value()(3) == (is_max ? 3.0F : 0.0F));
    tape.backward(y, Array{1.0F, 1.0F, 1.0F, 1.0F});
    // torch: each side of a NaN comparison gets the whole gradient; a tie halves it.
    CHECK(a.grad()(0) == 1.0F);
    CHECK(b.grad()(0) == 1.0F);
    CHECK(a.grad()(1) == 1.0F);
    CHECK(b.grad()(1) == 1.0F);
    CHECK(a.grad()(2) == 0.5F);
    CHECK(b.grad()(2) == 0.5F);
    CHECK(a.grad()(3) == (is_max ? 1.0F : 0.0F));
    CHECK(b.grad()(3) == (is_max ? 0.0F : 1.0F));
  }
}

TEST_CASE("max_pool2d and argmax take a NaN for the maximum, as PyTorch does") {
  // `v > best` passed over a NaN after the window's first element: it vanished from the result.
  const float nan = std::nanf("");
  ag::Tape tape;
  Var x = tape.variable(Array{{1.0F, nan, -2.0F, 0.0F}, {nan, 5.0F, 3.0F, 9.0F}});
  Var pooled = ag::max_pool2d(ag::reshape(x, {1, 1, 2, 4}), {1, 2});
  CHECK(std::isnan(pooled.value()(0, 0, 0, 0)));
  CHECK(pooled.value()(0, 0, 0, 1) == 0.0F);
  CHECK(std::isnan(pooled.value()(0, 0, 1, 0)));
  CHECK(pooled.value()(0, 0, 1, 1) == 9.0F);
  tape.backward(pooled, xt::ones<float>({1, 1, 2, 2}));
  CHECK(x.grad()(0, 1) == 1.0F);  // the NaN took the window's gradient
  CHECK(x.grad()(0, 0) == 0.0F);
  Var index = ag::argmax(x, 1);
  CHECK(index.value()(0) == 1.0F);
  CHECK(index.value()(1) == 0.0F);
}

TEST_CASE("softmax and log_softmax along each axis") {
  const Array a = sample({2, 3, 4}, 1, -3.0F, 3.0F);
  for (int axis : {0, 1, 2}) {
    INFO("axis " << axis);
    check("softmax", [axis](ag::Tape&, Inputs x) { return ag::softmax(x[0], axis); }, {a});
    check("log_softmax", [axis](ag::Tape&, Inputs x) { return ag::log_softmax(x[0], axis); }, {a});
  }
  ag::Tape tape;
  Var big = tape.constant(Array{{1000.0F, 0.0F}});
  CHECK(ag::softmax(big).value()(0, 0) == 1.0F);
  CHECK(ag::log_softmax(big).value()(0, 1) == -1000.0F);
}

TEST_CASE("cross_entropy and nll_loss, every reduction, with label smoothing") {
  const Array logits = sample(4, 5, 1, -3.0F, 3.0F);
  const Array targets{3.0F, 0.0F, 3.0F, 4.0F};
  for (auto r : {ag::Reduction::none, ag::Reduction::sum, ag::Reduction::mean}) {
    for (float smoothing : {0.0F, 0.1F}) {
      INFO("reduction " << static_cast<int>(r) << " smoothing " << smoothing);
      check("cross_entropy",
            [&](ag::Tape& t, Inputs x) { return ag::cross_entropy(x[0], t.constant(targets), r, smoothing); }, {logits});
    }
    check("nll_loss", [&](ag::Tape& t, Inputs x) { return ag::nll_loss(ag::log_softmax(x[0]), t.constant(targets), r); },
          {logits});
  }
  ag::Tape tape;
  Var l = tape.constant(logits), t = tape.constant(targets);
  CHECK(ag::cross_entropy(l, t).item() ==
        doctest::Approx(ag::nll_loss(ag::log_softmax(l), t).item()).epsilon(1e-6));
  CHECK_THROWS_AS(ag::cross_entropy(l, tape.constant(Array{5.0F, 0.0F, 0.0F, 0.0F})), ag::ShapeError);
  CHECK_THROWS_AS(ag::cross_entropy(l, tape.constant(Array{1.0F})), ag::ShapeError);
}

TEST_CASE("cross_entropy and nll_loss per position: scores [B, C, d1, d2], classes along dimension 1") {
  const Array logits = sample({2, 3, 2, 2}, 7, -3.0F, 3.0F);
  const Array targets{{{2.0F, 0.0F}, {1.0F, 2.0F}}, {{1.0F, 1.0F}, {0.0F, 2.0F}}};  // [2, 2, 2]
  for (auto r : {ag::Reduction::none, ag::Reduction::sum, ag::Reduction::mean, ag::Reduction::batch_mean}) {
    INFO("reduction " << static_cast<int>(r));
    check("cross_entropy per position",
          [&](ag::Tape& t, Inputs x) { return ag::cross_entropy(x[0], t.constant(targets), r, 0.1F); }, {logits});
    check("nll_loss per position",
          [&](ag::Tape& t, Inputs x) { return ag::nll_loss(ag::log_softmax(x[0], 1), t.constant(targets), r); },
          {logits});
  }
  // Each position is the [B, C] loss of its own column of scores: position (b, i, j) of the
  // per-position loss equals row b of the [B, C] loss of logits[:, :, i, j].
  ag::Tape tape;
  const Array per_position = ag::cross_entropy(tape.constant(logits), tape.constant(targets), ag::Reduction::none).value();
  REQUIRE(per_position.shape() == ag::Shape{2, 2, 2});
  for (std::size_t i = 0; i < 2; ++i)
    for (std::size_t j = 0; j < 2; ++j) {
      Array column({2, 3}), column_targets({2});
      for (std::size_t b = 0; b < 2; ++b) {
        for (std::size_t c = 0; c < 3; ++c) column(b, c) = logits(b, c, i, j);
        column_targets(b) = targets(b, i, j);
      }
      const Array rows = ag::cross_entropy(tape.constant(column), tape.constant(column_targets), ag::Reduction::none).value();
      for (std::size_t b = 0; b < 2; ++b) CHECK(per_position(b, i, j) == rows(b));
    }
  CHECK_THROWS_AS(ag::cross_entropy(tape.constant(logits), tape.constant(Array{{1.0F, 0.0F}, {0.0F, 1.0F}})),
                  ag::ShapeError);  // [2, 2]: a dimension short
}

TEST_CASE("dropout: the mask scales the gradient; evaluation is the identity") {
  ag::Rng rng(3);
  const Array a = sample(20, 50, 1);
  ag::Tape tape;
  Var x = tape.variable(a);
  Var y = ag::dropout(x, 0.25F, rng, true);
  std::size_t zeros = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (y.value().data()[i] == 0.0F) ++zeros;
    else CHECK(y.value().data()[i] == doctest::Approx(a.data()[i] / 0.75F));
  }
  CHECK(zeros > 180);  // 250 expected of 1000
  CHECK(zeros < 320);
  tape.backward(ag::sum(y));
  for (std::size_t i = 0; i < a.size(); ++i)
    CHECK(x.grad().data()[i] == (y.value().data()[i] == 0.0F ? 0.0F : doctest::Approx(1.0F / 0.75F)));
  CHECK(ag::dropout(x, 0.5F, rng, false).index() == x.index());
}

TEST_CASE("layer_norm and batch_norm (training: through the batch statistics)") {
  const Array a = sample(5, 4, 1);
  check("layer_norm", [](ag::Tape&, Inputs x) { return ag::layer_norm(x[0], x[1], x[2]); },
        {a, sample({4}, 2), sample({4}, 3)});
  check("layer_norm on [2, 3, 4]", [](ag::Tape&, Inputs x) { return ag::layer_norm(x[0], Var(), Var()); },
        {sample({2, 3, 4}, 4)});
  check("batch_norm training", [](ag::Tape&, Inputs x) {
    Array mean = xt::zeros<float>({4}), var = xt::ones<float>({4});
    return ag::batch_norm(x[0], mean, var, x[1], x[2], true);
  }, {a, sample({4}, 5), sample({4}, 6)});
  check("batch_norm evaluation", [](ag::Tape&, Inputs x) {
    Array mean{0.5F, -0.5F, 0.0F, 1.0F}, var{1.0F, 2.0F, 0.5F, 1.5F};
    return ag::batch_norm(x[0], mean, var, x[1], x[2], false);
  }, {a, sample({4}, 5), sample({4}, 6)});
}

TEST_CASE("layer_norm over the last two dimensions; batch_norm on [B, C, L]") {
  const Array a = sample({2, 3, 4}, 8);
  check("layer_norm over [3, 4]", [](ag::Tape&, Inputs x) { return ag::layer_norm(x[0], x[1], x[2], 1e-5F, 2); },
        {a, sample({3, 4}, 9), sample({3, 4}, 10)});
  check("batch_norm [B, C, L] training", [](ag::Tape&, Inputs x) {
    Array mean = xt::zeros<float>({3}), var = xt::ones<float>({3});
    return ag::batch_norm(x[0], mean, var, x[1], x[2], true);
  }, {a, sample({3}, 11), sample({3}, 12)});
  check("batch_norm [B, C, L] evaluation", [](ag::Tape&, Inputs x) {
    Array mean{0.5F, -0.5F, 0.0F}, var{1.0F, 2.0F, 0.5F};
    return ag::batch_norm(x[0], mean, var, x[1], x[2], false);
  }, {a, sample({3}, 11), sample({3}, 12)});
  // The statistics are per channel over B and L: channel 1 of the output has mean 0, variance 1.
  ag::Tape tape;
  Array mean = xt::zeros<float>({3}), var = xt::ones<float>({3});
  const Array y = ag::batch_norm(tape.constant(a), mean, var, Var(), Var(), true).value();
  double m = 0, s = 0;
  for (std::size_t b = 0; b < 2; ++b)
    for (std::size_t l = 0; l < 4; ++l) m += y(b, 1, l) / 8.0;
  for (std::size_t b = 0; b < 2; ++b)
    for (std::size_t l = 0; l < 4; ++l) s += (y(b, 1, l) - m) * (y(b, 1, l) - m) / 8.0;
  CHECK(m == doctest::Approx(0.0).epsilon(1e-5));
  CHECK(s == doctest::Approx(1.0).epsilon(1e-3));
  CHECK_THROWS_AS(ag::layer_norm(tape.constant(a), Var(), Var(), 1e-5F, 4), ag::ShapeError);
}

TEST_CASE("one_hot and argmax") {
  ag::Tape tape;
  Var h = ag::one_hot(tape.constant(Array{2.0F, 0.0F}), 3);
  REQUIRE(h.shape() == ag::Shape{2, 3});
  CHECK(h.value()(0, 2) == 1.0F);
  CHECK(h.value()(1, 0) == 1.0F);
  CHECK(xt::sum(h.value())() == 2.0F);
  Var m = ag::argmax(tape.constant(Array{{1.0F, 5.0F, 5.0F}, {7.0F, -1.0F, 0.0F}}), 1);
  CHECK(m.value()(0) == 1.0F);  // the first maximum
  CHECK(m.value()(1) == 0.0F);
  CHECK_FALSE(m.requires_grad());
  CHECK_THROWS_AS(ag::one_hot(tape.constant(Array{3.0F}), 3), ag::ShapeError);
}
