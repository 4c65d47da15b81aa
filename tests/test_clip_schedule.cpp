// Gradient clipping (torch.nn.utils.clip_grad_norm_'s rule) and learning-rate schedules,
// with exact expected values.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <numbers>

#include "autograd/autograd.hpp"
#include "optim/optim.hpp"

using ag::Array;

TEST_CASE("clip_grad_norm scales all gradients together to max_norm and returns the old norm") {
  ag::Parameter a(Array{{1.0F, 1.0F}}), b(Array{{1.0F}});
  a.grad = Array{{3.0F, 4.0F}};
  b.grad = Array{{12.0F}};  // global norm sqrt(9 + 16 + 144) = 13
  CHECK(optim::grad_norm({&a, &b}) == 13.0);

  SUBCASE("above the limit: factor max_norm / (13 + 1e-6)") {
    const double norm = optim::clip_grad_norm({&a, &b}, 6.5);
    CHECK(norm == 13.0);
    const double factor = 6.5 / (13.0 + 1e-6);
    CHECK(a.grad(0, 0) == doctest::Approx(3.0 * factor).epsilon(1e-7));
    CHECK(a.grad(0, 1) == doctest::Approx(4.0 * factor).epsilon(1e-7));
    CHECK(b.grad(0, 0) == doctest::Approx(12.0 * factor).epsilon(1e-7));
    CHECK(optim::grad_norm({&a, &b}) == doctest::Approx(6.5).epsilon(1e-6));
  }
  SUBCASE("below the limit: untouched") {
    CHECK(optim::clip_grad_norm({&a, &b}, 20.0) == 13.0);
    CHECK(a.grad(0, 0) == 3.0F);
    CHECK(b.grad(0, 0) == 12.0F);
  }
  SUBCASE("exactly at the limit: PyTorch's 1e-6 still scales, by 13 / 13.000001") {
    optim::clip_grad_norm({&a, &b}, 13.0);
    CHECK(b.grad(0, 0) < 12.0F);
    CHECK(b.grad(0, 0) == doctest::Approx(12.0 * 13.0 / 13.000001).epsilon(1e-7));
  }
  SUBCASE("a non-finite norm is returned and the gradients are left for the caller") {
    b.grad(0, 0) = std::numeric_limits<float>::infinity();
    CHECK(std::isinf(optim::clip_grad_norm({&a, &b}, 1.0)));
    CHECK(a.grad(0, 0) == 3.0F);
  }
}

TEST_CASE("grad_norm sums every element, including past the last full block of eight") {
  ag::Parameter p(Array({1, 1003}));
  p.grad.fill(2.0F);
  CHECK(optim::grad_norm({&p}) == std::sqrt(4.0 * 1003));
  p.grad(0, 1002) = 0.0F;  // the very last element counts
  CHECK(optim::grad_norm({&p}) == std::sqrt(4.0 * 1002));
}

TEST_CASE("StepLR multiplies by gamma every step_size steps") {
  optim::StepLR s(1.0, 3, 0.5);
  CHECK(s.lr(0) == 1.0);
  CHECK(s.lr(2) == 1.0);
  CHECK(s.lr(3) == 0.5);
  CHECK(s.lr(5) == 0.5);
  CHECK(s.lr(6) == 0.25);
  CHECK(s.lr(30) == std::ldexp(1.0, -10));
  CHECK_THROWS_AS(optim::StepLR(1.0, 0), std::invalid_argument);
}

TEST_CASE("CosineAnnealingLR follows half a cosine from base_lr to eta_min, then stays") {
  optim::CosineAnnealingLR s(1.1, 4, 0.1);
  CHECK(s.lr(0) == 1.1);
  CHECK(s.lr(1) ==
        doctest::Approx(0.1 + (1.0 + std::cos(std::numbers::pi / 4)) / 2).epsilon(1e-15));
  CHECK(s.lr(1) == doctest::Approx(0.953553390593).epsilon(1e-12));
  CHECK(s.lr(2) == doctest::Approx(0.6).epsilon(1e-15));
  CHECK(s.lr(3) == doctest::Approx(0.246446609407).epsilon(1e-12));
  CHECK(s.lr(4) == 0.1);
  CHECK(s.lr(1000) == 0.1);
}

TEST_CASE("LinearWarmup ramps to the peak, standalone or in front of another schedule") {
  SUBCASE("standalone") {
    optim::LinearWarmup s(4, 0.8);
    CHECK(s.lr(0) == doctest::Approx(0.2).epsilon(1e-15));
    CHECK(s.lr(1) == doctest::Approx(0.4).epsilon(1e-15));
    CHECK(s.lr(2) == doctest::Approx(0.6).epsilon(1e-15));
    CHECK(s.lr(3) == 0.8);
    CHECK(s.lr(4) == 0.8);
    CHECK(s.lr(100) == 0.8);
  }
  SUBCASE("then cosine, which starts where the ramp ends") {
    optim::LinearWarmup s(2, optim::CosineAnnealingLR(1.0, 4));
    CHECK(s.lr(0) == 0.5);
    CHECK(s.lr(1) == 1.0);
    CHECK(s.lr(2) == 1.0);
    CHECK(s.lr(3) == doctest::Approx((1.0 + std::cos(std::numbers::pi / 4)) / 2).epsilon(1e-15));
    CHECK(s.lr(4) == doctest::Approx(0.5).epsilon(1e-15));
    CHECK(s.lr(6) == 0.0);
  }
  SUBCASE("then StepLR, and no warm-up at all") {
    optim::LinearWarmup s(2, optim::StepLR(1.0, 3, 0.5));
    CHECK(s.lr(0) == 0.5);
    CHECK(s.lr(4) == 1.0);  // StepLR's step 2
    CHECK(s.lr(5) == 0.5);  // StepLR's step 3
    optim::LinearWarmup none(0, optim::StepLR(1.0, 3, 0.5));
    CHECK(none.lr(3) == 0.5);
  }
}

TEST_CASE("a schedule sets the optimizer's learning rate") {
  ag::Parameter w(Array{{1.0F}});
  optim::SGD sgd({&w}, {.lr = 123.0});
  optim::StepLR schedule(1.0, 3, 0.5);
  CHECK(schedule.apply(sgd, 4) == 0.5);
  CHECK(sgd.lr() == 0.5);
  w.grad(0, 0) = 1.0F;
  sgd.step();
  CHECK(w.value(0, 0) == 0.5F);
}
