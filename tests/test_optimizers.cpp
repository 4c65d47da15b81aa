// SGD, Adam and AdamW against values derived by hand from their published update equations,
// over three steps on a two-element parameter w = [1, -2] with given gradients; then the
// optimizer state round trip and the errors.
//
// The expected numbers were worked out independently of this code, in double precision,
// straight from the equations cited in each test; the first steps are shown in comments.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "autograd/autograd.hpp"
#include "optim/optim.hpp"

using ag::Array;
using Trajectory = std::vector<std::vector<double>>;

namespace {

// Runs `steps` steps from w = [1, -2], setting the gradient to grads[t] before step t,
// and returns w after each step.
template <class Opt, class Options>
Trajectory run(Options options, const Trajectory& grads) {
  ag::Parameter w(Array{{1.0F, -2.0F}});
  Opt opt({&w}, options);
  Trajectory out;
  for (const std::vector<double>& g : grads) {
    opt.zero_grad();
    w.grad(0, 0) = static_cast<float>(g[0]);
    w.grad(0, 1) = static_cast<float>(g[1]);
    opt.step();
    out.push_back({w.value(0, 0), w.value(0, 1)});
  }
  return out;
}

// Float32 updates against the double-precision derivation: a few rounding errors of
// relative size 6e-8 each, so agreement to 1e-6 (relative) says the equations are the same.
void check_trajectory(const Trajectory& got, const Trajectory& expected, double tolerance = 1e-6) {
  REQUIRE(got.size() == expected.size());
  for (std::size_t t = 0; t < got.size(); ++t)
    for (std::size_t i = 0; i < 2; ++i) {
      INFO("step " << t + 1 << ", element " << i << ": got " << got[t][i] << ", expected "
                   << expected[t][i]);
      CHECK(std::abs(got[t][i] - expected[t][i]) <= tolerance * std::abs(expected[t][i]));
    }
}

const Trajectory kConstant = {{0.5, -1.0}, {0.5, -1.0}, {0.5, -1.0}};
const Trajectory kVarying = {{0.5, -1.0}, {-0.3, 2.0}, {0.1, 0.1}};

}  // namespace

// ---- SGD: the update in PyTorch's torch.optim.SGD documentation ----
//   d = g + wd w;  b = d (t = 1), b = mu b + (1 - dampening) d (t > 1);
//   d = nesterov ? d + mu b : b;  w -= lr d

TEST_CASE("SGD without momentum: w -= lr (g + wd w)") {
  // lr 0.1, wd 0.1. t1: d = [0.5 + 0.1, -1 - 0.2] = [0.6, -1.2], w = [0.94, -1.88]
  // t2: d = [0.5 + 0.094, -1 - 0.188] = [0.594, -1.188], w = [0.8806, -1.7612]
  // t3: d = [0.58806, -1.17612], w = [0.821794, -1.643588]
  check_trajectory(run<optim::SGD>(optim::SGDOptions{.lr = 0.1, .weight_decay = 0.1}, kConstant),
                   {{0.94, -1.88}, {0.8806, -1.7612}, {0.821794, -1.643588}});
}

TEST_CASE("SGD with classical momentum") {
  // lr 0.1, mu 0.9, g = [0.5, -1] every step.
  // t1: b = g = [0.5, -1], w = [0.95, -1.9]
  // t2: b = [0.45 + 0.5, -0.9 - 1] = [0.95, -1.9], w = [0.855, -1.71]
  // t3: b = [1.355, -2.71], w = [0.7195, -1.439]
  check_trajectory(run<optim::SGD>(optim::SGDOptions{.lr = 0.1, .momentum = 0.9}, kConstant),
                   {{0.95, -1.9}, {0.855, -1.71}, {0.7195, -1.439}});
}

TEST_CASE("SGD with dampening: the first step takes the gradient undamped") {
  // lr 0.1, mu 0.9, dampening 0.5, element 0 (g = 0.5):
  // t1: b = 0.5, w = 0.95;  t2: b = 0.45 + 0.25 = 0.7, w = 0.88;  t3: b = 0.63 + 0.25 = 0.88, w =
  // 0.792
  check_trajectory(
      run<optim::SGD>(optim::SGDOptions{.lr = 0.1, .momentum = 0.9, .dampening = 0.5}, kConstant),
      {{0.95, -1.9}, {0.88, -1.76}, {0.792, -1.584}});
}

TEST_CASE("SGD with Nesterov momentum") {
  // lr 0.1, mu 0.9, element 0 (g = 0.5):
  // t1: b = 0.5,   d = 0.5 + 0.45 = 0.95,     w = 1 - 0.095 = 0.905
  // t2: b = 0.95,  d = 0.5 + 0.855 = 1.355,   w = 0.7695
  // t3: b = 1.355, d = 0.5 + 1.2195 = 1.7195, w = 0.59755
  check_trajectory(
      run<optim::SGD>(optim::SGDOptions{.lr = 0.1, .momentum = 0.9, .nesterov = true}, kConstant),
      {{0.905, -1.81}, {0.7695, -1.539}, {0.59755, -1.1951}});
}

// ---- Adam: Kingma & Ba (2015), Algorithm 1 ----
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//   m_hat = m / (1 - b1^t);  v_hat = v / (1 - b2^t);  w -= lr m_hat / (sqrt(v_hat) + eps)
// with torch.optim.Adam's weight decay added to g first (g += wd w).

TEST_CASE("Adam, Algorithm 1 of Kingma & Ba") {
  // lr 0.1, b1 0.9, b2 0.999, eps 1e-8, element 0:
  // t1: g = 0.5:  m = 0.05, v = 0.00025; m_hat = 0.5, v_hat = 0.25; w = 1 - 0.1 * 0.5 / 0.5 = 0.9
  // t2: g = -0.3: m = 0.045 - 0.03 = 0.015, v = 0.00024975 + 0.00009 = 0.00033975;
  //     m_hat = 0.015 / 0.19 = 0.0789474, v_hat = 0.00033975 / 0.001999 = 0.169960;
  //     w = 0.9 - 0.1 * 0.0789474 / 0.412262 = 0.880850
  check_trajectory(run<optim::Adam>(optim::AdamOptions{.lr = 0.1}, kVarying),
                   {{0.900000002, -1.900000001},
                    {0.8808501989417752, -1.9366103534720749},
                    {0.8554536806163684, -1.9677376894782834}});
}

TEST_CASE("Adam: eps is added to sqrt(v_hat), after the bias correction") {
  // A large eps makes its placement visible: lr 0.01, b1 0.5, b2 0.75, eps 0.1, element 0:
  // t1: m_hat = 0.5, v_hat = 0.25; w = 1 - 0.01 * 0.5 / (0.5 + 0.1) = 0.991667
  // (sqrt(v_hat + eps) would give 0.991548; sqrt(v) + eps with v uncorrected 0.989453).
  check_trajectory(
      run<optim::Adam>(optim::AdamOptions{.lr = 0.01, .beta1 = 0.5, .beta2 = 0.75, .eps = 0.1},
                       kVarying),
      {{0.9916666666666667, -1.990909090909091},
       {0.9923357281964594, -1.9966315222850397},
       {0.9912830443803339, -2.0002483582939536}});
}

TEST_CASE("Adam's weight decay is an L2 term in the gradient") {
  // t1: g = [0.5 + 0.1, -1 - 0.2]: the first step is still lr * sign, w = [0.9, -1.9];
  // from t2 on the decay has passed through m and v.
  check_trajectory(run<optim::Adam>(optim::AdamOptions{.lr = 0.1, .weight_decay = 0.1}, kVarying),
                   {{0.9000000016666666, -1.9000000008333333},
                    {0.8613529972101512, -1.9250178784643248},
                    {0.8147177290693192, -1.9416188938569523}});
}

// ---- AdamW: Loshchilov & Hutter (2019), Algorithm 2 ----
//   w -= eta_t (alpha m_hat / (sqrt(v_hat) + eps) + lambda w)
// with torch.optim.AdamW's choice alpha = 1, eta_t = lr, lambda = weight_decay.

TEST_CASE("AdamW, Algorithm 2 of Loshchilov & Hutter: decay decoupled from the moments") {
  // lr 0.1, wd 0.1. t1: w = 1 - 0.1 (0.5 / 0.5 + 0.1 * 1) = 0.89;  -2 - 0.1 (-1 - 0.2) = -1.88
  check_trajectory(run<optim::AdamW>(optim::AdamWOptions{.lr = 0.1, .weight_decay = 0.1}, kVarying),
                   {{0.890000002, -1.880000001},
                    {0.8619501989217752, -1.8978103534620747},
                    {0.8279341786071506, -1.9099595859336624}});
}

TEST_CASE("AdamW's default weight decay is PyTorch's 0.01; Adam's is 0") {
  ag::Parameter a(Array{{1.0F}}), b(Array{{1.0F}});
  optim::Adam adam({&a});
  optim::AdamW adamw({&b});
  adam.step();  // zero gradient: Adam leaves w alone, AdamW shrinks it by lr * wd
  adamw.step();
  CHECK(a.value(0, 0) == 1.0F);
  CHECK(b.value(0, 0) == doctest::Approx(1.0 - 1e-3 * 1e-2).epsilon(1e-7));
  CHECK(b.value(0, 0) < 1.0F);
}

TEST_CASE("an optimizer step and clipping after a deferred zero_grad see zeros where no gradient flowed") {
  ag::Parameter w(Array{{2.0F, -1.0F}});
  w.grad.fill(std::numeric_limits<float>::quiet_NaN());
  optim::SGD sgd({&w}, {.lr = 0.5});
  sgd.defer_zero_grad();
  CHECK(optim::grad_norm({&w}) == 0.0);  // settles w's gradient: it must not see the NaNs
  w.grad.fill(std::numeric_limits<float>::quiet_NaN());
  sgd.defer_zero_grad();
  sgd.step();  // no backward: the gradient is zero, so w stays as it was
  CHECK(w.value(0, 0) == 2.0F);
  CHECK(w.value(0, 1) == -1.0F);
  sgd.zero_grad();
  CHECK_FALSE(w.grad_zero_pending);
}

TEST_CASE("the learning rate can be read and changed between steps") {
  ag::Parameter w(Array{{1.0F}});
  optim::SGD sgd({&w}, {.lr = 0.5});
  CHECK(sgd.lr() == 0.5);
  w.grad(0, 0) = 1.0F;
  sgd.step();
  CHECK(w.value(0, 0) == 0.5F);
  sgd.set_lr(0.25);
  sgd.step();
  CHECK(w.value(0, 0) == 0.25F);
  CHECK(sgd.step_count() == 2);
  CHECK_THROWS_AS(sgd.set_lr(-1.0), std::invalid_argument);
}

TEST_CASE("a large parameter is updated element by element like a tiny one") {
  // The loops are written to vectorize; every element, including the tail after the last
  // full vector, must follow the same scalar rule.
  const optim::AdamOptions options{.lr = 0.05, .weight_decay = 0.01};
  ag::Parameter big(Array({3, 37}));
  ag::Rng rng(3);
  rng.fill_uniform(big.value, -1.0F, 1.0F);
  // Gradients are stored once, so that both runs see the very same floats (recomputing
  // them in two loops could round differently: the compiler may fuse a multiply-add).
  std::vector<Array> gradients;
  for (int t = 0; t < 3; ++t) {
    Array g({3, 37});
    rng.fill_uniform(g, -1.0F, 1.0F);
    gradients.push_back(g);
  }
  const Array start = big.value;
  auto gradient = [&](std::size_t i, int t) { return gradients[t].data()[i]; };

  optim::Adam opt({&big}, options);
  for (int t = 0; t < 3; ++t) {
    for (std::size_t i = 0; i < big.value.size(); ++i) big.grad.data()[i] = gradient(i, t);
    opt.step();
  }
  for (std::size_t i = 0; i < big.value.size(); ++i) {
    ag::Parameter tiny(Array{{start.data()[i]}});
    optim::Adam alone({&tiny}, options);
    for (int t = 0; t < 3; ++t) {
      tiny.grad(0, 0) = gradient(i, t);
      alone.step();
    }
    CHECK(big.value.data()[i] == tiny.value(0, 0));
  }
}

TEST_CASE("Adam's update is PyTorch's formula bit for bit, its division by sqrt(correction2) included") {
  // The loop replaces x / sqrt(correction2) by a multiply and two fused multiply-adds that
  // must round exactly as the division does. 200,000 elements with gradients from 1e-8 to 100
  // over 30 steps (30 corrections) against the formula written out with the division.
  constexpr std::size_t kCount = 200000;
  constexpr int kSteps = 30;
  const double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  ag::Parameter p(Array({1, kCount}));
  ag::Rng rng(11);
  rng.fill_uniform(p.value, -1.0F, 1.0F);
  std::vector<float> w(p.value.begin(), p.value.end()), m(kCount, 0.0F), v(kCount, 0.0F);
  optim::Adam adam({&p}, {.lr = lr});
  Array exponent({1, kCount}), sign({1, kCount});
  for (int t = 1; t <= kSteps; ++t) {
    rng.fill_uniform(exponent, -8.0F, 2.0F);
    rng.fill_uniform(sign, -1.0F, 1.0F);
    for (std::size_t i = 0; i < kCount; ++i)
      p.grad.data()[i] = std::copysign(std::pow(10.0F, exponent.data()[i]), sign.data()[i]);
    adam.step();
    const float b1 = static_cast<float>(beta1), b2 = static_cast<float>(beta2);
    const float one_minus_b1 = static_cast<float>(1.0 - beta1), one_minus_b2 = static_cast<float>(1.0 - beta2);
    const float step_size = static_cast<float>(lr / (1.0 - std::pow(beta1, t)));
    const float sqrt_correction2 = static_cast<float>(std::sqrt(1.0 - std::pow(beta2, t)));
    std::size_t differ = 0;
    for (std::size_t i = 0; i < kCount; ++i) {
      const float d = p.grad.data()[i];
      m[i] = b1 * m[i] + one_minus_b1 * d;
      v[i] = b2 * v[i] + one_minus_b2 * d * d;
      w[i] = w[i] - step_size * m[i] / (std::sqrt(v[i]) / sqrt_correction2 + static_cast<float>(eps));
      differ += w[i] != p.value.data()[i];
    }
    INFO("step ", t);
    CHECK(differ == 0);
    std::copy(p.value.begin(), p.value.end(), w.begin());  // each step from the same floats
  }
}

TEST_CASE("state() and load_state() resume training exactly") {
  auto check_resume = [](auto make_optimizer) {
    const Trajectory grads = {{0.5, -1.0}, {-0.3, 2.0}, {0.1, 0.1}, {0.7, -0.2}};
    auto set_grad = [](ag::Parameter& w, const std::vector<double>& g) {
      w.grad(0, 0) = static_cast<float>(g[0]);
      w.grad(0, 1) = static_cast<float>(g[1]);
    };
    // Uninterrupted: four steps.
    ag::Parameter a(Array{{1.0F, -2.0F}});
    auto opt_a = make_optimizer(a);
    for (const auto& g : grads) {
      set_grad(a, g);
      opt_a.step();
    }
    // Interrupted after two steps: save parameter and optimizer, rebuild both, resume.
    ag::Parameter b(Array{{1.0F, -2.0F}});
    auto opt_b = make_optimizer(b);
    for (int t = 0; t < 2; ++t) {
      set_grad(b, grads[t]);
      opt_b.step();
    }
    const optim::OptimizerState saved = opt_b.state();
    ag::Parameter c(b.value);
    auto opt_c = make_optimizer(c);
    opt_c.load_state(saved);
    CHECK(opt_c.step_count() == 2);
    for (int t = 2; t < 4; ++t) {
      set_grad(c, grads[t]);
      opt_c.step();
    }
    CHECK(c.value(0, 0) == a.value(0, 0));  // bit for bit
    CHECK(c.value(0, 1) == a.value(0, 1));
    // Without the state the same two steps land elsewhere.
    ag::Parameter d(b.value);
    auto opt_d = make_optimizer(d);
    for (int t = 2; t < 4; ++t) {
      set_grad(d, grads[t]);
      opt_d.step();
    }
    CHECK(d.value(0, 0) != a.value(0, 0));
    return saved;
  };

  SUBCASE("Adam: step count, lr and both moments") {
    const optim::OptimizerState s =
        check_resume([](ag::Parameter& w) { return optim::Adam({&w}, {.lr = 0.1}); });
    CHECK(s.scalars.at("step") == 2.0);
    CHECK(s.scalars.at("lr") == 0.1);
    CHECK(s.arrays.size() == 2);
    // m after two steps for element 0: 0.9 * 0.05 + 0.1 * -0.3 = 0.015
    CHECK(s.arrays.at("0.exp_avg")(0, 0) == doctest::Approx(0.015).epsilon(1e-6));
    CHECK(s.arrays.count("0.exp_avg_sq") == 1);
  }
  SUBCASE("SGD with momentum: the buffer, and that it is past its first step") {
    const optim::OptimizerState s = check_resume(
        [](ag::Parameter& w) { return optim::SGD({&w}, {.lr = 0.1, .momentum = 0.9}); });
    CHECK(s.arrays.at("0.momentum_buffer")(0, 0) == doctest::Approx(0.9 * 0.5 - 0.3).epsilon(1e-6));
  }
}

TEST_CASE("load_state refuses a state that does not fit, naming the entry") {
  ag::Parameter w(Array{{1.0F, -2.0F}});
  ag::Parameter other(Array({3, 3}));
  optim::Adam adam({&w});
  auto message_of = [&](const optim::OptimizerState& s) {
    try {
      adam.load_state(s);
    } catch (const optim::StateError& e) {
      return std::string(e.what());
    }
    return std::string("no StateError");
  };
  const optim::OptimizerState sgd_state = optim::SGD({&w}, {.momentum = 0.9}).state();
  CHECK(message_of(sgd_state).find("'0.exp_avg' is missing") != std::string::npos);

  optim::OptimizerState wrong_shape = optim::Adam({&other}).state();
  CHECK(message_of(wrong_shape).find("'0.exp_avg' has shape [3, 3], expected [1, 2]") !=
        std::string::npos);

  optim::OptimizerState extra = adam.state();
  extra.arrays["1.exp_avg"] = Array({1, 2});
  CHECK(message_of(extra).find("unexpected array '1.exp_avg'") != std::string::npos);

  optim::OptimizerState no_step = adam.state();
  no_step.scalars.erase("step");
  CHECK(message_of(no_step).find("'step' is missing") != std::string::npos);

  optim::OptimizerState bad_step = adam.state();
  bad_step.scalars["step"] = 2.5;
  CHECK(message_of(bad_step).find("not a step count") != std::string::npos);
  CHECK(adam.step_count() == 0);  // nothing was loaded
}

TEST_CASE("optimizers refuse bad settings and parameters without a gradient") {
  ag::Parameter w(Array{{1.0F}});
  CHECK_THROWS_AS(optim::SGD({&w}, {.nesterov = true}), std::invalid_argument);  // no momentum
  CHECK_THROWS_AS(optim::SGD({&w}, {.momentum = 0.9, .dampening = 0.1, .nesterov = true}),
                  std::invalid_argument);
  CHECK_THROWS_AS(optim::Adam({&w}, {.beta1 = 1.0}), std::invalid_argument);
  CHECK_THROWS_AS(optim::Adam({&w}, {.lr = -1e-3}), std::invalid_argument);
  CHECK_THROWS_AS(optim::Adam({&w, &w}), std::invalid_argument);  // listed twice
  CHECK_THROWS_AS(optim::Adam({nullptr}), std::invalid_argument);

  ag::Parameter no_grad;
  no_grad.value = Array({2, 2});
  optim::SGD sgd({&w, &no_grad}, {.lr = 0.1});
  w.grad(0, 0) = 1.0F;
  CHECK_THROWS_WITH_AS(sgd.step(), doctest::Contains("gradient"), std::logic_error);
  CHECK(w.value(0, 0) == 1.0F);  // checked before anything was written
  CHECK(sgd.step_count() == 0);
}

TEST_CASE("AMSGrad divides by the largest second moment so far") {
  // Gradients 1, then 0.01 for two steps: v falls, v_max stays; the update follows the formula.
  ag::Parameter w(Array{0.0F}), plain(Array{0.0F});
  optim::Adam ams({&w}, {.lr = 0.1, .amsgrad = true});
  optim::Adam adam({&plain}, {.lr = 0.1});
  double m = 0, v = 0, v_max = 0, expected = 0;
  for (int t = 1; t <= 3; ++t) {
    const double g = t == 1 ? 1.0 : 0.01;
    w.grad = Array{static_cast<float>(g)};
    plain.grad = w.grad;
    ams.step();
    adam.step();
    m = 0.9 * m + 0.1 * g;
    v = 0.999 * v + 0.001 * g * g;
    v_max = std::max(v_max, v);
    expected -= 0.1 / (1 - std::pow(0.9, t)) * m / (std::sqrt(v_max / (1 - std::pow(0.999, t))) + 1e-8);
    CHECK(w.value(0) == doctest::Approx(expected).epsilon(1e-5));
  }
  CHECK(std::abs(w.value(0)) < std::abs(plain.value(0)));  // smaller steps once v falls
  CHECK(ams.state().arrays.count("0.max_exp_avg_sq") == 1);
  CHECK(adam.state().arrays.count("0.max_exp_avg_sq") == 0);
}

TEST_CASE("parameter groups: their own weight decay and learning rate, scaled by schedules") {
  ag::Parameter weight(Array{1.0F}), bias(Array{1.0F});
  optim::AdamW opt({{.params = {&weight}}, {.params = {&bias}, .lr = 0.5, .weight_decay = 0.0}},
                   {.lr = 0.1, .weight_decay = 0.5});
  CHECK(opt.lr(0) == 0.1);
  CHECK(opt.lr(1) == 0.5);
  opt.set_lr(0.05);  // a schedule halves the rate: both groups follow
  CHECK(opt.lr(1) == doctest::Approx(0.25));
  weight.grad = Array{0.0F};
  bias.grad = Array{0.0F};
  opt.step();  // zero gradient: only the decay moves a parameter
  CHECK(weight.value(0) == doctest::Approx(1.0 - 0.05 * 0.5));
  CHECK(bias.value(0) == 1.0F);
  optim::SGD sgd({{.params = {&weight}, .lr = 1.0}}, {.lr = 0.1});
  weight.grad = Array{2.0F};
  const float before = weight.value(0);
  sgd.step();
  CHECK(weight.value(0) == doctest::Approx(before - 2.0));
}
