// The conv ops' batch-in-lanes path (kernels/conv_lanes.hpp: kernel 4, stride 2, padding 1,
// channels multiples of 8, AVX-512 builds) against their general path on the same inputs, and
// against finite differences.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "autograd/autograd.hpp"
#include "autograd/kernels/conv_lanes.hpp"
#include "autograd/kernels/parallel.hpp"
#include "tests/gradcheck_helpers.hpp"

using ag::Array;
using ag::Shape;

namespace {

// The lanes path on or off for a scope.
struct LanesSwitch {
  explicit LanesSwitch(bool on) { ag::set_conv_lanes_enabled(on); }
  ~LanesSwitch() { ag::set_conv_lanes_enabled(true); }
  LanesSwitch(const LanesSwitch&) = delete;
  LanesSwitch& operator=(const LanesSwitch&) = delete;
};

struct Case {
  bool transposed;
  std::size_t batch, big_c, small_c, big_h, big_w;
  bool bias, relu, input_grad;
  std::string name() const {
    return std::string(transposed ? "conv_transpose2d" : "conv2d") + " batch " + std::to_string(batch) + ", " +
           std::to_string(big_c) + " <-> " + std::to_string(small_c) + " channels, " + std::to_string(big_h) + "x" +
           std::to_string(big_w) + (bias ? ", bias" : "") + (relu ? ", relu" : "") +
           (input_grad ? "" : ", no input gradient");
  }
  Shape x() const {
    return transposed ? Shape{batch, small_c, big_h / 2, big_w / 2} : Shape{batch, big_c, big_h, big_w};
  }
  Shape w() const { return Shape{small_c, big_c, 4, 4}; }
  std::size_t out_c() const { return transposed ? big_c : small_c; }
};

ag::Var op(const Case& c, ag::Var x, ag::Var w, const ag::Var* b) {
  if (c.transposed) {
    const ag::ConvTranspose2dOptions o{.stride = 2, .padding = 1, .relu = c.relu};
    return b ? ag::conv_transpose2d(x, w, *b, o) : ag::conv_transpose2d(x, w, o);
  }
  const ag::Conv2dOptions o{.stride = 2, .padding = 1, .relu = c.relu};
  return b ? ag::conv2d(x, w, *b, o) : ag::conv2d(x, w, o);
}

// The output and the gradients (weight's, input's if required, bias's if any) of
// sum(y * r) + sum(sigmoid(y)).
std::vector<Array> run(const Case& c, bool lanes) {
  const LanesSwitch on(lanes);
  const Array x = testing::sample(c.x(), 11), w = testing::sample(c.w(), 12, -0.2F, 0.2F, 0.0F);
  const Array b = testing::sample(Shape{c.out_c()}, 13);
  ag::Tape tape;
  ag::Var xv = c.input_grad ? tape.variable(x) : tape.constant(x), wv = tape.variable(w), bv = tape.variable(b);
  ag::Var y = op(c, xv, wv, c.bias ? &bv : nullptr);
  ag::Var loss = ag::sum(y * tape.constant(testing::sample(y.shape(), 14))) + ag::sum(ag::sigmoid(y));
  tape.backward(loss);
  std::vector<Array> out{y.value(), wv.grad()};
  if (c.input_grad) out.push_back(xv.grad());
  if (c.bias) out.push_back(bv.grad());
  return out;
}

// |got - want| <= tol (|want| + the values' scale), the scale the largest |want|.
void check_close(const Array& got, const Array& want, float tol) {
  REQUIRE(got.shape() == want.shape());
  float scale = 0.0F;
  for (float v : want) scale = std::max(scale, std::abs(v));
  std::size_t bad = 0;
  for (std::size_t i = 0; i < got.size(); ++i)
    bad += !(std::abs(got.data()[i] - want.data()[i]) <= tol * (std::abs(want.data()[i]) + scale));
  CHECK(bad == 0);
}

}  // namespace

TEST_CASE("conv ops' lanes path: values and gradients those of the general path, batches of whole and short chunks") {
  if (!ag::conv_lanes_fits(8, 8, 2, 2)) {
    MESSAGE("no AVX-512 in this build: the lanes path is not built");
    return;
  }
  std::vector<Case> cases;
  for (bool transposed : {false, true}) {
    // the VAE's two 7 x 7 layers at batch 128 (8 chunks), 16 and 20 (a chunk of 4 images)
    for (std::size_t batch : {16, 20, 128}) cases.push_back({transposed, batch, 32, 64, 14, 14, true, true, true});
    cases.push_back({transposed, 20, 32, 64, 16, 16, false, true, true});    // 8 x 8: a 32 x 32 picture's
    cases.push_back({transposed, 20, 16, 8, 12, 20, true, false, true});     // 6 x 10, 8 small channels (4 + 4 rows)
    cases.push_back({transposed, 3, 8, 24, 2, 6, false, false, true});       // 1 x 3: one position a row
    cases.push_back({transposed, 37, 24, 16, 14, 14, true, true, false});    // no input gradient (a first layer)
    cases.push_back({transposed, 33, 8, 40, 6, 10, false, true, false});     // 40 = 6 x 6 + 4
  }
  for (const Case& c : cases) {
    INFO(c.name());
    const auto lanes = run(c, true), general = run(c, false);
    REQUIRE(lanes.size() == general.size());
    for (std::size_t i = 0; i < lanes.size(); ++i) {
      INFO("output " << i);
      check_close(lanes[i], general[i], 1e-5F);
    }
    // other sums, other bits: the lanes path did run
    if (c.batch >= 16) CHECK(lanes[1] != general[1]);
  }
}

// The gradients of x, w and b when each is added to, not written: w and b are parameters
// (a backward accumulates into them) and x also feeds a product recorded after the convolution
// (whose rule, run first, writes x's gradient); `passes` backward passes over one record.
std::vector<Array> run_accumulating(const Case& c, bool lanes, int passes) {
  const LanesSwitch on(lanes);
  ag::Parameter w(testing::sample(c.w(), 12, -0.2F, 0.2F, 0.0F)), b(testing::sample(Shape{c.out_c()}, 13));
  ag::Tape tape;
  ag::Var xv = tape.variable(testing::sample(c.x(), 11)), wv = tape.parameter(w), bv = tape.parameter(b);
  ag::Var y = op(c, xv, wv, &bv);
  ag::Var loss = ag::sum(y * tape.constant(testing::sample(y.shape(), 14))) +
                 ag::sum(xv * tape.constant(testing::sample(c.x(), 15)));
  for (int i = 0; i < passes; ++i) tape.backward(loss);
  return {xv.grad(), w.grad, b.grad};
}

TEST_CASE("conv ops' lanes path: gradients added to, as the general path adds them, and over two backward passes") {
  if (!ag::conv_lanes_fits(8, 8, 2, 2)) return;
  for (bool transposed : {false, true}) {
    const Case c{transposed, 20, 16, 8, 12, 20, true, true, true};
    INFO(c.name());
    const auto lanes = run_accumulating(c, true, 1), general = run_accumulating(c, false, 1);
    const auto twice = run_accumulating(c, true, 2);
    for (std::size_t i = 0; i < lanes.size(); ++i) {
      INFO("gradient " << i);
      check_close(lanes[i], general[i], 1e-5F);
    }
    check_close(twice[0], lanes[0], 0.0F);         // x is a variable: each pass writes its gradient anew
    // the parameters' gradients accumulate (the second pass's sums run onto the first's, so
    // not always to the last bit of twice the first: the general path's neither)
    check_close(twice[1], lanes[1] * 2.0F, 1e-5F);
    check_close(twice[2], lanes[2] * 2.0F, 1e-5F);
  }
}

TEST_CASE("conv ops' lanes path: the fused ReLU keeps NaN, as relu and the general path do") {
  if (!ag::conv_lanes_fits(8, 8, 2, 2)) return;
  for (bool transposed : {false, true}) {
    const Case c{transposed, 16, 8, 8, 4, 6, true, true, true};
    INFO(c.name());
    Array x = testing::sample(c.x(), 31);
    x.data()[0] = std::nanf("");  // image 0, channel 0, pixel 0: its window's outputs become NaN
    const Array w = testing::sample(c.w(), 32), b = testing::sample(Shape{c.out_c()}, 33);
    Array ys[2];
    for (bool lanes : {true, false}) {
      const LanesSwitch on(lanes);
      ag::Tape tape;
      ag::Var bv = tape.constant(b);
      ys[lanes] = op(c, tape.constant(x), tape.constant(w), &bv).value();
    }
    std::size_t nans = 0;
    for (std::size_t i = 0; i < ys[0].size(); ++i) {
      CHECK(std::isnan(ys[1].data()[i]) == std::isnan(ys[0].data()[i]));
      nans += std::isnan(ys[1].data()[i]);
    }
    CHECK(nans > 0);
  }
}

TEST_CASE("conv ops' lanes path: the same bits at 1 and 2 threads and after a thread count changed") {
  if (!ag::conv_lanes_fits(8, 8, 2, 2)) return;
  const int before = ag::num_threads();
  for (bool transposed : {false, true}) {
    const Case c{transposed, 100, 32, 64, 14, 14, true, true, true};
    INFO(c.name());
    ag::set_num_threads(1);
    const auto one = run(c, true);
    ag::set_num_threads(2);
    const auto two = run(c, true);
    for (std::size_t i = 0; i < one.size(); ++i) CHECK(one[i] == two[i]);
    // forward at 2 threads, backward at 1
    const Array x = testing::sample(c.x(), 11), w = testing::sample(c.w(), 12, -0.2F, 0.2F, 0.0F);
    ag::Tape tape;
    ag::Var xv = tape.variable(x), wv = tape.variable(w), bv = tape.variable(testing::sample(Shape{c.out_c()}, 13));
    ag::Var y = op(c, xv, wv, &bv);
    ag::Var loss = ag::sum(y * tape.constant(testing::sample(y.shape(), 14))) + ag::sum(ag::sigmoid(y));
    ag::set_num_threads(1);
    tape.backward(loss);
    CHECK(wv.grad() == two[1]);
    CHECK(xv.grad() == two[2]);
    CHECK(bv.grad() == two[3]);
  }
  ag::set_num_threads(before);
}

TEST_CASE("conv ops' lanes path: gradients the finite differences") {
  if (!ag::conv_lanes_fits(8, 8, 2, 2)) return;
  // 3 images (one short chunk), 8 <-> 8 channels, 4 x 6 <-> 2 x 3, with bias
  const Array x = testing::sample(Shape{3, 8, 4, 6}, 21), w = testing::sample(Shape{8, 8, 4, 4}, 22, -0.5F, 0.5F);
  const Array xt = testing::sample(Shape{3, 8, 2, 3}, 24), b = testing::sample(Shape{8}, 23);
  // (no ReLU: its kinks, which some of the 3 x 8 x 24 outputs sit near, fail the general path
  // too; its mask is checked against the general path above)
  const ag::Conv2dOptions o{.stride = 2, .padding = 1};
  const ag::ConvTranspose2dOptions ot{.stride = 2, .padding = 1};
  testing::check("conv2d, lanes", [o](ag::Tape&, testing::Inputs v) { return ag::conv2d(v[0], v[1], v[2], o); },
                 {x, w, b});
  testing::check("conv_transpose2d, lanes",
                 [ot](ag::Tape&, testing::Inputs v) { return ag::conv_transpose2d(v[0], v[1], v[2], ot); }, {xt, w, b});
}

TEST_CASE("conv_lanes_fits: channels multiples of 8, even sizes, a chunk's planes at most 16 MB") {
  if (!ag::conv_lanes_fits(8, 8, 2, 2)) return;
  CHECK(ag::conv_lanes_fits(32, 64, 14, 14));  // the VAE's 28 x 28 model
  CHECK(ag::conv_lanes_fits(32, 64, 16, 16));  // its 32 x 32 one
  CHECK_FALSE(ag::conv_lanes_fits(12, 64, 14, 14));
  CHECK_FALSE(ag::conv_lanes_fits(32, 60, 14, 14));
  CHECK_FALSE(ag::conv_lanes_fits(32, 64, 7, 14));
  CHECK_FALSE(ag::conv_lanes_fits(8, 8, 1024, 1024));
  CHECK_FALSE(ag::conv_lanes_fits(8, 8, std::size_t{1} << 40, 2));
}
