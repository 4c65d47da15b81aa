// nn::Linear against x Wᵀ + b worked out by hand, its PyTorch-style initialization, and the
// initializers of nn/init.hpp, each checked against the distribution its formula states.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "autograd/autograd.hpp"
#include "nn/nn.hpp"
#include "tests/gradcheck_helpers.hpp"

using ag::Array;

namespace {

struct Stats {
  double mean = 0, variance = 0, min = 0, max = 0;
};

// |got - want| / |want|. (doctest::Approx would not do here: its epsilon is relative to
// max(1, |value|), so for a variance of 4e-4 it would accept almost anything.)
double relative_error(double got, double want) { return std::abs(got - want) / std::abs(want); }

Stats stats_of(const Array& a) {
  Stats s;
  for (float v : a) s.mean += v;
  s.mean /= static_cast<double>(a.size());
  for (float v : a) s.variance += (v - s.mean) * (v - s.mean);
  s.variance /= static_cast<double>(a.size());
  s.min = *std::min_element(a.begin(), a.end());
  s.max = *std::max_element(a.begin(), a.end());
  return s;
}

}  // namespace

TEST_CASE("Linear computes x Wᵀ + b, and backward fills the module's own gradients") {
  ag::Rng rng(1);
  nn::Linear fc(3, 2, rng);
  fc.weight.value = Array{{1.0F, 0.0F, -1.0F}, {0.5F, 0.5F, 0.5F}};
  fc.bias->value = Array{{10.0F, -10.0F}};
  ag::Tape tape;
  ag::Var x = tape.constant(Array{{1.0F, 2.0F, 3.0F}, {4.0F, 5.0F, 6.0F}});
  ag::Var y = fc(x);
  // Row 1: [1 - 3 + 10, 0.5 (1 + 2 + 3) - 10] = [8, -7];  row 2: [4 - 6 + 10, 7.5 - 10] = [8,
  // -2.5].
  REQUIRE(y.shape() == ag::Shape{2, 2});
  CHECK(y.value()(0, 0) == 8.0F);
  CHECK(y.value()(0, 1) == -7.0F);
  CHECK(y.value()(1, 0) == 8.0F);
  CHECK(y.value()(1, 1) == -2.5F);
  // d sum(y) / dW[j, :] = sum over rows of x = [5, 7, 9] for each j;  d / db = [2, 2].
  tape.backward(ag::sum(y));
  CHECK(fc.weight.grad(0, 0) == 5.0F);
  CHECK(fc.weight.grad(1, 1) == 7.0F);
  CHECK(fc.weight.grad(1, 2) == 9.0F);
  CHECK(fc.bias->grad(0, 0) == 2.0F);
  CHECK(fc.bias->grad(0, 1) == 2.0F);
  CHECK(tape.size() == 5);  // x, weight, bias, one fused linear node, sum
}

TEST_CASE("Linear without a bias computes x Wᵀ and has one parameter") {
  ag::Rng rng(1);
  nn::Linear fc(2, 1, rng, /*bias=*/false);
  CHECK(fc.bias == nullptr);
  CHECK(fc.parameters().size() == 1);
  fc.weight.value = Array{{3.0F, -1.0F}};
  ag::Tape tape;
  ag::Var y = fc(tape.constant(Array{{2.0F, 5.0F}}));
  CHECK(y.item() == 1.0F);
}

TEST_CASE("Linear refuses an input of the wrong width, naming the shapes") {
  ag::Rng rng(1);
  nn::Linear fc(4, 3, rng);
  ag::Tape tape;
  CHECK_THROWS_WITH_AS(fc(tape.constant(Array({2, 5}))), doctest::Contains("[2, 5]"),
                       ag::ShapeError);
  CHECK_THROWS_AS(nn::Linear(0, 3, rng), std::invalid_argument);
}

TEST_CASE("Linear(784, 400) is initialized as PyTorch's: U(-1/sqrt(784), 1/sqrt(784))") {
  ag::Rng rng(42);
  nn::Linear fc(784, 400, rng);
  CHECK(fc.weight.value.shape()[0] == 400);
  CHECK(fc.weight.value.shape()[1] == 784);
  CHECK(fc.bias->value.shape()[0] == 1);
  CHECK(fc.bias->value.shape()[1] == 400);
  CHECK(fc.num_parameters() == 784 * 400 + 400);
  const double bound = 1.0 / 28.0;  // 1 / sqrt(784)
  const double variance = bound * bound / 3.0;

  // 313,600 weights: the sample mean has standard deviation sqrt(b^2/3 / n) = 3.7e-5 and
  // the sample variance a relative one of sqrt(4/45 / n) * 3 = 0.16%, so the tolerances
  // below are about 5 standard deviations. The extremes come within 0.1% of the bound:
  // all 313,600 draws missing [0.999 b, b) has probability (1 - 0.0005)^313600 ~ e^-157.
  const Stats w = stats_of(fc.weight.value);
  CHECK(w.min >= -bound);
  CHECK(w.max <= bound);
  CHECK(w.min < -0.999 * bound);
  CHECK(w.max > 0.999 * bound);
  CHECK(std::abs(w.mean) < 2e-4);
  CHECK(relative_error(w.variance, variance) < 0.01);

  // The bias is drawn from the same interval: 400 values (relative sd of the variance 4.5%).
  const Stats b = stats_of(fc.bias->value);
  CHECK(b.min >= -bound);
  CHECK(b.max <= bound);
  CHECK(relative_error(b.variance, variance) < 0.2);
}

TEST_CASE("initializers follow their stated formulas") {
  ag::Rng rng(7);
  Array w({300, 500});  // fan_out 300, fan_in 500: 150,000 draws
  CHECK(nn::init::fan_in(w) == 500);
  CHECK(nn::init::fan_out(w) == 300);

  SUBCASE("xavier_uniform: b = gain sqrt(6 / (fan_in + fan_out))") {
    nn::init::xavier_uniform(w, rng, 2.0F);
    const double b = 2.0 * std::sqrt(6.0 / 800.0);
    const Stats s = stats_of(w);
    CHECK(s.max <= b);
    CHECK(s.min >= -b);
    CHECK(s.max > 0.99 * b);
    CHECK(relative_error(s.variance, b * b / 3.0) < 0.02);
  }
  SUBCASE("xavier_normal: s = gain sqrt(2 / (fan_in + fan_out))") {
    nn::init::xavier_normal(w, rng);
    CHECK(relative_error(stats_of(w).variance, 2.0 / 800.0) < 0.02);
  }
  SUBCASE("kaiming_uniform with PyTorch's a = sqrt(5) has bound 1 / sqrt(fan_in)") {
    nn::init::kaiming_uniform(w, rng, std::sqrt(5.0F));
    const double b = 1.0 / std::sqrt(500.0);
    const Stats s = stats_of(w);
    CHECK(s.max <= b * (1 + 1e-6));
    CHECK(s.max > 0.99 * b);
    CHECK(relative_error(s.variance, b * b / 3.0) < 0.02);
  }
  SUBCASE("kaiming_uniform for ReLU (a = 0) over fan_out: b = sqrt(2) sqrt(3 / fan_out)") {
    nn::init::kaiming_uniform(w, rng, 0.0F, nn::init::Fan::out);
    const double b = std::sqrt(6.0 / 300.0);
    const Stats s = stats_of(w);
    CHECK(s.max <= b * (1 + 1e-6));
    CHECK(s.max > 0.99 * b);
  }
  SUBCASE("kaiming_normal for ReLU: variance 2 / fan_in") {
    nn::init::kaiming_normal(w, rng);
    const Stats s = stats_of(w);
    CHECK(std::abs(s.mean) < 5 * std::sqrt(2.0 / 500.0 / 150000.0));
    CHECK(relative_error(s.variance, 2.0 / 500.0) < 0.02);
  }
  SUBCASE("normal(mean, stddev) shifts and scales") {
    nn::init::normal(w, rng, 3.0F, 0.5F);
    const Stats s = stats_of(w);
    CHECK(std::abs(s.mean - 3.0) < 5 * 0.5 / std::sqrt(150000.0));  // 5 sd of the sample mean
    CHECK(relative_error(s.variance, 0.25) < 0.02);
  }
}

TEST_CASE("linear with a fused ReLU (LinearOptions::relu): the bits of linear then relu, values and gradients") {
  // Both forward paths (Yᵀ = W Xᵀ with the ReLU applied as it is transposed, for a batch
  // shorter than a large weight's rows; and the plain product), with and without a bias; the
  // output also read by a second op, so its gradient comes from two places before the mask.
  struct Case {
    const char* name;
    std::size_t batch, in, out;
    bool bias;
  };
  const Case cases[] = {
      {"transposed path (batch < in, in x out >= 65536)", 37, 300, 250, true},
      {"transposed path, no bias", 20, 320, 210, false},
      {"plain path, large", 300, 260, 256, true},
      {"small, odd", 7, 5, 3, true},
      {"small, no bias", 9, 4, 6, false},
  };
  for (const Case& c : cases) {
    INFO(std::string(c.name));
    const Array x = testing::sample(c.batch, c.in, 61), w = testing::sample(c.out, c.in, 62);
    const Array b = testing::sample(1, c.out, 63), weights = testing::sample(c.batch, c.out, 64);
    auto run = [&](bool fused) {
      ag::Tape tape;
      ag::Var xv = tape.variable(x), wv = tape.variable(w), bv = tape.variable(b);
      ag::Var y;
      if (c.bias)
        y = fused ? ag::linear(xv, wv, bv, {.relu = true}) : ag::relu(ag::linear(xv, wv, bv));
      else
        y = fused ? ag::linear(xv, wv, {.relu = true}) : ag::relu(ag::linear(xv, wv));
      ag::Var loss = ag::sum(y * tape.constant(weights)) + ag::sum(ag::sigmoid(y));
      tape.backward(loss);
      std::vector<Array> out{y.value(), xv.grad(), wv.grad()};
      if (c.bias) out.push_back(bv.grad());
      return out;
    };
    const auto plain = run(false), fused = run(true);
    REQUIRE(fused.size() == plain.size());
    for (std::size_t i = 0; i < plain.size(); ++i) {
      CAPTURE(i);
      CHECK(fused[i] == plain[i]);
    }
    std::size_t zeros = 0;  // the ReLU does cut: some outputs are 0, not all
    for (float v : fused[0]) zeros += v == 0.0F;
    CHECK(zeros > 0);
    CHECK(zeros < fused[0].size());
  }
  // Against finite differences, on a layer whose outputs before the ReLU all lie at least 0.05
  // from its kink (the first seed that gives that), of both signs.
  for (std::uint64_t seed = 70;; seed += 3) {
    REQUIRE(seed < 5000);
    const Array x = testing::sample(4, 3, seed), w = testing::sample(3, 3, seed + 1), b = testing::sample(1, 3, seed + 2);
    ag::Tape tape;
    const Array pre = ag::linear(tape.constant(x), tape.constant(w), tape.constant(b)).value();
    const bool away = std::all_of(pre.begin(), pre.end(), [](float v) { return std::abs(v) >= 0.05F; });
    const bool both = std::any_of(pre.begin(), pre.end(), [](float v) { return v < 0; }) &&
                      std::any_of(pre.begin(), pre.end(), [](float v) { return v > 0; });
    if (!away || !both) continue;
    testing::check("linear + relu",
                   [](ag::Tape&, testing::Inputs v) { return ag::linear(v[0], v[1], v[2], {.relu = true}); }, {x, w, b});
    break;
  }
}

TEST_CASE("Sequential runs Linear then ReLU as one fused node, with the bits of the two") {
  ag::Rng rng(3);
  nn::Sequential mlp;
  mlp.add<nn::Linear>(6, 5, rng);
  mlp.add<nn::ReLU>();
  mlp.add<nn::Linear>(5, 4, rng);
  const Array x = testing::sample(8, 6, 71);
  ag::Tape tape;
  ag::Var fused = mlp(tape.constant(x));
  CHECK(tape.size() == 7);  // x, then per layer weight, bias and one linear node: no relu node
  ag::Var h = mlp[0](tape.constant(x));
  ag::Var plain = mlp[2](ag::relu(h));
  CHECK(fused.value() == plain.value());
}
