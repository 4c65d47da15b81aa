// The convolution and pooling ops against finite differences, for every input and option,
// and against direct loops written from the definitions.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "autograd/autograd.hpp"
#include "autograd/kernels/gemm.hpp"
#include "autograd/kernels/parallel.hpp"
#include "tests/gradcheck_helpers.hpp"

using ag::Array;
using ag::Shape;
using testing::check;
using testing::Inputs;
using testing::sample;

namespace {

// conv2d from its definition, one output element at a time (bias [O], or none if empty).
Array direct_conv2d(const Array& x, const Array& w, const Array* b, ag::Conv2dOptions o) {
  const std::size_t B = x.shape()[0], C = x.shape()[1], H = x.shape()[2], W = x.shape()[3];
  const std::size_t O = w.shape()[0], kh = w.shape()[2], kw = w.shape()[3];
  const std::size_t oh = (H + 2 * o.padding.h - o.dilation.h * (kh - 1) - 1) / o.stride.h + 1;
  const std::size_t ow = (W + 2 * o.padding.w - o.dilation.w * (kw - 1) - 1) / o.stride.w + 1;
  Array y({B, O, oh, ow});
  for (std::size_t n = 0; n < B; ++n)
    for (std::size_t f = 0; f < O; ++f)
      for (std::size_t i = 0; i < oh; ++i)
        for (std::size_t j = 0; j < ow; ++j) {
          double acc = b ? (*b)(f) : 0.0;
          for (std::size_t c = 0; c < C; ++c)
            for (std::size_t p = 0; p < kh; ++p)
              for (std::size_t q = 0; q < kw; ++q) {
                const long r = static_cast<long>(i * o.stride.h + p * o.dilation.h) - o.padding.h;
                const long s = static_cast<long>(j * o.stride.w + q * o.dilation.w) - o.padding.w;
                if (r < 0 || s < 0 || r >= static_cast<long>(H) || s >= static_cast<long>(W)) continue;
                acc += static_cast<double>(x(n, c, r, s)) * w(f, c, p, q);
              }
          y(n, f, i, j) = static_cast<float>(acc);
        }
  return y;
}

// conv_transpose2d from its definition: each input pixel scatters its weighted kernel.
Array direct_conv_transpose2d(const Array& x, const Array& w, ag::ConvTranspose2dOptions o) {
  const std::size_t B = x.shape()[0], C = x.shape()[1], H = x.shape()[2], W = x.shape()[3];
  const std::size_t O = w.shape()[1], kh = w.shape()[2], kw = w.shape()[3];
  const std::size_t oh = (H - 1) * o.stride.h - 2 * o.padding.h + o.dilation.h * (kh - 1) + o.output_padding.h + 1;
  const std::size_t ow = (W - 1) * o.stride.w - 2 * o.padding.w + o.dilation.w * (kw - 1) + o.output_padding.w + 1;
  Array y({B, O, oh, ow});
  for (std::size_t n = 0; n < B; ++n)
    for (std::size_t c = 0; c < C; ++c)
      for (std::size_t i = 0; i < H; ++i)
        for (std::size_t j = 0; j < W; ++j)
          for (std::size_t f = 0; f < O; ++f)
            for (std::size_t p = 0; p < kh; ++p)
              for (std::size_t q = 0; q < kw; ++q) {
                const long r = static_cast<long>(i * o.stride.h + p * o.dilation.h) - o.padding.h;
                const long s = static_cast<long>(j * o.stride.w + q * o.dilation.w) - o.padding.w;
                if (r < 0 || s < 0 || r >= static_cast<long>(oh) || s >= static_cast<long>(ow)) continue;
                y(n, f, r, s) += x(n, c, i, j) * w(c, f, p, q);
              }
  return y;
}

Array shaped(const Shape& shape, std::initializer_list<float> values) {
  Array a(shape);
  std::copy(values.begin(), values.end(), a.begin());
  return a;
}

void check_close(const Array& got, const Array& want) {
  REQUIRE(got.shape() == want.shape());
  for (std::size_t i = 0; i < got.size(); ++i) REQUIRE(got.data()[i] == doctest::Approx(want.data()[i]).epsilon(1e-4));
}

struct ConvCase {
  const char* name;
  Shape x, w;
  ag::Conv2dOptions options;
};

struct TransposeCase {
  const char* name;
  Shape x, w;
  ag::ConvTranspose2dOptions options;
};

// Runs that must agree (other thread counts, a thread count changed midway): each result
// bit for bit the one at its place in `want`.
void check_same_bits(const std::vector<Array>& got, const std::vector<Array>& want) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    INFO("result " << i);
    CHECK(got[i] == want[i]);
  }
}

}  // namespace

TEST_CASE("conv2d: values equal the definition, gradients the finite differences, for every option") {
  const ConvCase cases[] = {
      {"stride 1, padding 0", {1, 1, 5, 5}, {1, 1, 3, 3}, {}},
      {"stride 2, padding 1, C > 1, batch > 1", {2, 3, 6, 6}, {4, 3, 4, 4}, {.stride = 2, .padding = 1}},
      {"non-square input and kernel, padding (1, 0)", {2, 2, 5, 7}, {3, 2, 3, 2}, {.padding = {1, 0}}},
      {"stride (2, 1), dilation 2", {2, 2, 7, 6}, {2, 2, 2, 3}, {.stride = {2, 1}, .padding = 1, .dilation = 2}},
      {"1x1 kernel", {3, 4, 3, 2}, {5, 4, 1, 1}, {}},
      // rows of 2 positions, 3 images a part: a row's last vector runs past its image's run
      {"planes smaller than a vector, several images a chunk", {24, 2, 4, 4}, {3, 2, 4, 4}, {.stride = 2, .padding = 1}},
      // over 48 output channels, so gemm packs the columns and gets them gathered from the
      // images (conv_panels.hpp): rows (c, i, j) and columns that are not whole panels
      {"implicit GEMM: 50 output channels, K = 18, 3 images of 9 positions", {3, 3, 6, 5}, {50, 3, 3, 2},
       {.stride = 2, .padding = 1}},
      {"implicit GEMM: dilation 2, stride (1, 2), padding (0, 2)", {2, 2, 7, 8}, {49, 2, 2, 3},
       {.stride = {1, 2}, .padding = {0, 2}, .dilation = 2}},
      // rows of 11 pixels, split into their two stride phases (and merged back for the input's
      // gradient) 8 at a time, the last 8 starting at an odd column
      {"implicit GEMM: stride 2, rows of 11", {2, 2, 5, 11}, {50, 2, 3, 3}, {.stride = 2, .padding = 1}},
      // the last row and column are in no window: their gradient is 0, their phases unused
      {"stride 4: pixels no window reaches", {2, 2, 5, 5}, {3, 2, 2, 2}, {.stride = 4}},
      // a full row panel of input channels (8 on AVX-512): the input's gradient through col2im
      // with 2 x 2 taps per stride phase; then phases of 2 and 1 taps, uneven strides
      {"9 input channels, stride 2, padding 1", {2, 9, 6, 6}, {5, 9, 4, 4}, {.stride = 2, .padding = 1}},
      {"stride (3, 2), kernel 5x4, padding (2, 1)", {2, 8, 9, 6}, {3, 8, 5, 4}, {.stride = {3, 2}, .padding = {2, 1}}},
  };
  for (const ConvCase& c : cases) {
    INFO(c.name);
    const Array x = sample(c.x, 1), w = sample(c.w, 2), b = sample(Shape{c.w[0]}, 3);
    const ag::Conv2dOptions o = c.options;
    ag::Tape tape;
    check_close(ag::conv2d(tape.constant(x), tape.constant(w), tape.constant(b), o).value(),
                direct_conv2d(x, w, &b, o));
    check_close(ag::conv2d(tape.constant(x), tape.constant(w), o).value(), direct_conv2d(x, w, nullptr, o));
    check("conv2d", [o](ag::Tape&, Inputs v) { return ag::conv2d(v[0], v[1], v[2], o); }, {x, w, b});
    check("conv2d without bias", [o](ag::Tape&, Inputs v) { return ag::conv2d(v[0], v[1], o); }, {x, w});
  }
}

TEST_CASE("conv_transpose2d: values equal the definition, gradients the finite differences, for every option") {
  const TransposeCase cases[] = {
      {"stride 1, padding 0", {1, 1, 3, 3}, {1, 1, 3, 3}, {}},
      {"stride 2, padding 1 (the VAE's), C > 1, batch > 1", {2, 3, 4, 4}, {3, 2, 4, 4}, {.stride = 2, .padding = 1}},
      {"output_padding 1, non-square", {2, 2, 3, 5}, {2, 3, 3, 2}, {.stride = 2, .padding = {1, 0}, .output_padding = 1}},
      {"dilation 2, stride (1, 2)", {2, 2, 4, 3}, {2, 2, 2, 3}, {.stride = {1, 2}, .padding = 1, .dilation = 2}},
      {"planes smaller than a vector, several images a chunk", {24, 3, 2, 2}, {3, 2, 4, 4}, {.stride = 2, .padding = 1}},
      {"implicit GEMM: 50 input channels, output_padding (1, 0), kernel 4x3", {3, 50, 3, 2}, {50, 2, 4, 3},
       {.stride = 2, .padding = 1, .output_padding = {1, 0}}},
      {"8 output channels, stride 2, padding 1", {2, 3, 3, 4}, {3, 8, 4, 4}, {.stride = 2, .padding = 1}},
      {"stride (2, 3), kernel 3x4, output_padding (1, 2)", {2, 2, 3, 2}, {2, 9, 3, 4},
       {.stride = {2, 3}, .padding = {1, 0}, .output_padding = {1, 2}}},
  };
  for (const TransposeCase& c : cases) {
    INFO(c.name);
    const Array x = sample(c.x, 4), w = sample(c.w, 5), b = sample(Shape{c.w[1]}, 6);
    const ag::ConvTranspose2dOptions o = c.options;
    ag::Tape tape;
    check_close(ag::conv_transpose2d(tape.constant(x), tape.constant(w), o).value(),
                direct_conv_transpose2d(x, w, o));
    check("conv_transpose2d", [o](ag::Tape&, Inputs v) { return ag::conv_transpose2d(v[0], v[1], v[2], o); },
          {x, w, b});
    check("conv_transpose2d without bias", [o](ag::Tape&, Inputs v) { return ag::conv_transpose2d(v[0], v[1], o); },
          {x, w});
  }
}

TEST_CASE("conv_transpose2d is conv2d's gradient in its input: <conv(x), y> = <x, convT(y)>") {
  const ag::Conv2dOptions o{.stride = 2, .padding = 1};
  const Array x = sample(Shape{2, 3, 8, 6}, 7), w = sample(Shape{4, 3, 4, 4}, 8);
  ag::Tape tape;
  ag::Var wx = tape.constant(w);
  ag::Var y = ag::conv2d(tape.constant(x), wx, o);
  const Array r = sample(y.shape(), 9);
  ag::Var back = ag::conv_transpose2d(tape.constant(r), wx, {.stride = 2, .padding = 1});
  REQUIRE(back.shape() == x.shape());
  double lhs = 0, rhs = 0;
  for (std::size_t i = 0; i < r.size(); ++i) lhs += static_cast<double>(y.value().data()[i]) * r.data()[i];
  for (std::size_t i = 0; i < x.size(); ++i) rhs += static_cast<double>(back.value().data()[i]) * x.data()[i];
  CHECK(lhs == doctest::Approx(rhs).epsilon(1e-5));
}

TEST_CASE("an input shared by two conv ops gets both gradients: the first op the sweep reaches writes it, the next adds") {
  // The sweep hands a conv op its input's gradient unzeroed if no other op has reached it yet
  // (writes_fresh); the op then writes it instead of adding. Here both orders, and a weight
  // used twice, fresh in one op and accumulated in the other.
  const ag::Conv2dOptions o{.stride = 2, .padding = 1};
  const Array x = sample(Shape{2, 3, 6, 5}, 21), w = sample(Shape{4, 3, 4, 4}, 22), w2 = sample(Shape{2, 3, 3, 3}, 23);
  check("conv2d twice", [o](ag::Tape&, Inputs v) {
    return ag::conv2d(v[0], v[1], o) + ag::conv2d(v[0], v[1], o);
  }, {x, w});
  check("conv2d and a relu of its input", [o](ag::Tape&, Inputs v) {
    return ag::sum(ag::conv2d(v[0], v[1], o)) + ag::sum(ag::relu(v[0])) +
           ag::sum(ag::conv2d(v[0], v[2], ag::Conv2dOptions{}));
  }, {x, w, w2});
  const Array t = sample(Shape{2, 4, 3, 3}, 24), tw = sample(Shape{4, 3, 4, 4}, 25);
  check("conv_transpose2d twice", [](ag::Tape&, Inputs v) {
    const ag::ConvTranspose2dOptions to{.stride = 2, .padding = 1};
    return ag::conv_transpose2d(v[0], v[1], to) + ag::conv_transpose2d(v[0], v[1], to);
  }, {t, tw});
}

TEST_CASE("conv2d gives the same bits with 1 and 2 threads, and twice the gradient after two backward passes") {
  const Array x = sample(Shape{37, 3, 9, 8}, 10), w = sample(Shape{4, 3, 4, 4}, 11), b = sample(Shape{4}, 12);
  auto run = [&](int threads, int passes) {
    ag::set_num_threads(threads);
    ag::Tape tape;
    ag::Var xv = tape.variable(x), wv = tape.variable(w), bv = tape.variable(b);
    ag::Var y = ag::sum(ag::conv2d(xv, wv, bv, {.stride = 2, .padding = 1}));
    for (int i = 0; i < passes; ++i) tape.backward(y);
    return std::vector<Array>{y.value(), xv.grad(), wv.grad(), bv.grad()};
  };
  const auto one = run(1, 1), two = run(2, 1);
  ag::set_num_threads(0);
  check_same_bits(one, two);
  // backward twice on one record: the leaves' gradients are recomputed, not stale scratch
  const auto again = run(2, 2);
  for (std::size_t i = 1; i < again.size(); ++i) CHECK(again[i] == two[i]);
}

// Chunks::run: each thread claims parts and runs them all in one set of chunk buffers (its
// slot), so the buffers a part's chunks use depend on the thread count and on timing; the
// values and gradients may not. 29 images in 8 parts of 3 or 4 (chunks of several images
// here, a last short one), 64 channels (the implicit GEMMs) and a fused ReLU (the buffer of
// the gradient before it), at 1, 2 and 3 threads.
TEST_CASE("conv ops give the same bits at 1, 2 and 3 threads: the chunk buffers are a thread's, not a part's") {
  const Array x = sample(Shape{29, 5, 9, 7}, 13), w = sample(Shape{64, 5, 4, 4}, 14), b = sample(Shape{64}, 15);
  const Array wt = sample(Shape{64, 3, 4, 4}, 16), bt = sample(Shape{3}, 17);
  auto run = [&](int threads) {
    ag::set_num_threads(threads);
    ag::Tape tape;
    ag::Var xv = tape.variable(x), wv = tape.variable(w), bv = tape.variable(b);
    ag::Var wtv = tape.variable(wt), btv = tape.variable(bt);
    ag::Var h = ag::conv2d(xv, wv, bv, {.stride = 2, .padding = 1, .relu = true});
    ag::Var y = ag::conv_transpose2d(h, wtv, btv, {.stride = 2, .padding = 1, .relu = true});
    ag::Var loss = ag::sum(ag::mul(y, y));
    tape.backward(loss);
    return std::vector<Array>{y.value(), xv.grad(), wv.grad(), bv.grad(), wtv.grad(), btv.grad()};
  };
  const auto one = run(1), two = run(2), three = run(3);
  ag::set_num_threads(0);
  check_same_bits(two, one);
  check_same_bits(three, one);
}

// The node's scratch holds one set of chunk buffers per thread, counted at the forward; a
// backward run at another thread count finds the same buffers (Chunks::fit_slots) and gives the
// same bits.
TEST_CASE("conv ops: a thread count changed between forward and backward gives the same bits") {
  const Array x = sample(Shape{29, 5, 9, 7}, 23), w = sample(Shape{64, 5, 4, 4}, 24), wt = sample(Shape{64, 3, 4, 4}, 25);
  auto run = [&](int forward_threads, int backward_threads) {
    ag::set_num_threads(forward_threads);
    ag::Tape tape;
    ag::Var xv = tape.variable(x), wv = tape.variable(w), wtv = tape.variable(wt);
    ag::Var h = ag::conv2d(xv, wv, {.stride = 2, .padding = 1, .relu = true});
    ag::Var y = ag::conv_transpose2d(h, wtv, {.stride = 2, .padding = 1, .relu = true});
    ag::Var loss = ag::sum(ag::mul(y, y));
    ag::set_num_threads(backward_threads);
    tape.backward(loss);
    return std::vector<Array>{xv.grad(), wv.grad(), wtv.grad()};
  };
  const auto same = run(2, 2), fewer = run(3, 1), more = run(1, 3);
  ag::set_num_threads(0);
  check_same_bits(fewer, same);
  check_same_bits(more, same);
}

// A batch of no images (a slice can make one) runs forward and backward to empty results.
TEST_CASE("conv ops on an empty batch give empty outputs and zero weight gradients") {
  ag::Tape tape;
  ag::Var x = tape.variable(Array(Shape{0, 3, 8, 8})), w = tape.variable(sample(Shape{4, 3, 3, 3}, 31));
  ag::Var b = tape.variable(sample(Shape{4}, 32)), wt = tape.variable(sample(Shape{4, 2, 4, 4}, 33));
  ag::Var h = ag::conv2d(x, w, b, {.stride = 1, .padding = 1, .relu = true});
  ag::Var y = ag::conv_transpose2d(h, wt, {.stride = 2, .padding = 1});
  CHECK(h.value().shape() == Shape{0, 4, 8, 8});
  CHECK(y.value().shape() == Shape{0, 2, 16, 16});
  tape.backward(ag::sum(y));
  CHECK(x.grad().size() == 0);
  for (float v : w.grad()) CHECK(v == 0.0F);
  for (float v : b.grad()) CHECK(v == 0.0F);
  for (float v : wt.grad()) CHECK(v == 0.0F);
}

// The built-in GEMM sums each output in one order whatever the batch, so an image's values and
// input gradient are the same bits alone or in a batch; OpenBLAS (-Dblas=openblas) blocks by
// size and promises only closeness.
static bool same(float batched, float alone) {
  static const bool exact = std::string(ag::gemm_name()) == "built-in";
  return exact ? batched == alone : batched == doctest::Approx(alone).epsilon(1e-4).scale(1);
}

TEST_CASE("conv ops over a batch of many chunks: values and gradients equal those of one image at a time") {
  // 200 images: 8 parts of 25, each run as chunks of a few images (512 x 64 columns per image:
  // 33 K floats with the channel-major block, so 3 or 4 images a chunk), the weight gradient
  // summed chunk after chunk, then part after part; against the same op on each image alone.
  // The wide layers (64 channels) take the implicit GEMM's path for every product.
  const std::size_t batch = 200;
  for (const auto& layer : {std::pair{false, false}, std::pair{true, false}, std::pair{false, true},
                            std::pair{true, true}}) {
    const bool transposed = layer.first, wide = layer.second;  // (lambdas capture no structured bindings)
    CAPTURE(transposed);
    CAPTURE(wide);
    const std::size_t narrow_side = wide ? 64 : 8;
    const Shape xs = transposed ? Shape{batch, narrow_side, 8, 8} : Shape{batch, 32, 16, 16};
    const Shape ws = transposed ? Shape{narrow_side, 32, 4, 4} : Shape{narrow_side, 32, 4, 4};
    const Array x = sample(xs, 15), w = sample(ws, 16), b = sample(Shape{transposed ? ws[1] : ws[0]}, 17);
    auto op = [transposed](ag::Var xv, ag::Var wv, ag::Var bv) {
      return transposed ? ag::conv_transpose2d(xv, wv, bv, {.stride = 2, .padding = 1})
                        : ag::conv2d(xv, wv, bv, {.stride = 2, .padding = 1});
    };
    ag::Tape tape;
    ag::Var xv = tape.variable(x), wv = tape.variable(w), bv = tape.variable(b);
    ag::Var y = op(xv, wv, bv);
    const Array seed = sample(y.shape(), 18);
    tape.backward(y, seed);
    Array dw_sum(ws), db_sum(b.shape());
    const std::size_t x_image = x.size() / batch, y_image = seed.size() / batch;
    for (std::size_t i = 0; i < batch; ++i) {
      Shape one_x = xs, one_y = y.shape();
      one_x[0] = one_y[0] = 1;
      Array xi(one_x), si(one_y);
      std::copy_n(x.data() + i * x_image, x_image, xi.data());
      std::copy_n(seed.data() + i * y_image, y_image, si.data());
      ag::Tape one;
      ag::Var xo = one.variable(xi), wo = one.variable(w), bo = one.variable(b);
      ag::Var yo = op(xo, wo, bo);
      one.backward(yo, si);
      for (std::size_t j = 0; j < y_image; ++j) REQUIRE(same(y.value().data()[i * y_image + j], yo.value().data()[j]));
      for (std::size_t j = 0; j < x_image; ++j) REQUIRE(same(xv.grad().data()[i * x_image + j], xo.grad().data()[j]));
      dw_sum += wo.grad();
      db_sum += bo.grad();
    }
    // float sums of thousands of terms in two orders: the error scales with the largest entries,
    // not with an entry that happens to cancel out near zero
    float largest = 0;
    for (std::size_t j = 0; j < dw_sum.size(); ++j) largest = std::max(largest, std::abs(dw_sum.data()[j]));
    for (std::size_t j = 0; j < dw_sum.size(); ++j)
      REQUIRE(wv.grad().data()[j] == doctest::Approx(dw_sum.data()[j]).epsilon(1e-4).scale(largest));
    for (std::size_t j = 0; j < db_sum.size(); ++j)
      REQUIRE(bv.grad().data()[j] == doctest::Approx(db_sum.data()[j]).epsilon(1e-4));
  }
}

TEST_CASE("conv_transpose2d of the VAE's last layer: a chunk's columns added into the pixels a group of images at a time") {
  // 32 channels of 14 x 14 -> 1 of 28 x 28: a chunk of 13 images, which col2im_gemm takes 2 at a
  // time (the last group 1); the values and the input's gradient of the batch, against those
  // of one image at a time, bit for bit (with the built-in GEMM; see same())
  const std::size_t batch = 27;
  const Array x = sample(Shape{batch, 32, 14, 14}, 31), w = sample(Shape{32, 1, 4, 4}, 32), b = sample(Shape{1}, 33);
  const ag::ConvTranspose2dOptions o{.stride = 2, .padding = 1};
  ag::Tape tape;
  ag::Var xv = tape.variable(x);
  ag::Var y = ag::conv_transpose2d(xv, tape.constant(w), tape.constant(b), o);
  const Array seed = sample(y.shape(), 34);
  tape.backward(y, seed);
  const std::size_t x_image = x.size() / batch, y_image = seed.size() / batch;
  for (std::size_t i = 0; i < batch; ++i) {
    Array xi(Shape{1, 32, 14, 14}), si(Shape{1, 1, 28, 28});
    std::copy_n(x.data() + i * x_image, x_image, xi.data());
    std::copy_n(seed.data() + i * y_image, y_image, si.data());
    ag::Tape one;
    ag::Var xo = one.variable(xi);
    ag::Var yo = ag::conv_transpose2d(xo, one.constant(w), one.constant(b), o);
    one.backward(yo, si);
    for (std::size_t j = 0; j < y_image; ++j) REQUIRE(same(y.value().data()[i * y_image + j], yo.value().data()[j]));
    for (std::size_t j = 0; j < x_image; ++j) REQUIRE(same(xv.grad().data()[i * x_image + j], xo.grad().data()[j]));
  }
  Array want = direct_conv_transpose2d(x, w, o);  // (without the bias)
  for (std::size_t j = 0; j < want.size(); ++j) want.data()[j] += b.data()[0];
  check_close(y.value(), want);
}

TEST_CASE("conv ops with a fused ReLU (the relu option): the bits of the op followed by relu, values and gradients") {
  // The VAE's 32 -> 64 and 64 -> 32 layers over several chunks (their gradients before the ReLU
  // taken chunk by chunk), small odd shapes, no bias; the op's output also used by a second op,
  // so its gradient comes from two places before the ReLU's mask.
  struct Case {
    const char* name;
    bool transposed, bias;
    Shape x, w;
    ag::Size2 stride, padding, output_padding;
  };
  const Case cases[] = {
      {"conv2d, the VAE's encoder.2, 20 images", false, true, {20, 32, 14, 14}, {64, 32, 4, 4}, 2, 1, 0},
      {"conv_transpose2d, the VAE's decoder.5, 20 images", true, true, {20, 64, 7, 7}, {64, 32, 4, 4}, 2, 1, 0},
      {"conv2d, planes smaller than a vector, no bias", false, false, {24, 2, 4, 4}, {3, 2, 4, 4}, 2, 1, 0},
      {"conv2d, stride 1, non-square", false, true, {3, 2, 5, 7}, {3, 2, 3, 2}, 1, {1, 0}, 0},
      {"conv_transpose2d, output_padding, no bias", true, false, {2, 2, 3, 5}, {2, 3, 3, 2}, 2, {1, 0}, 1},
  };
  for (const Case& c : cases) {
    INFO(std::string(c.name));
    const Array x = sample(c.x, 41), w = sample(c.w, 42), b = sample(Shape{c.transposed ? c.w[1] : c.w[0]}, 43);
    auto op = [&c](ag::Var xv, ag::Var wv, const ag::Var* bv, bool relu) {
      if (c.transposed) {
        const ag::ConvTranspose2dOptions o{
            .stride = c.stride, .padding = c.padding, .output_padding = c.output_padding, .relu = relu};
        return bv ? ag::conv_transpose2d(xv, wv, *bv, o) : ag::conv_transpose2d(xv, wv, o);
      }
      const ag::Conv2dOptions o{.stride = c.stride, .padding = c.padding, .relu = relu};
      return bv ? ag::conv2d(xv, wv, *bv, o) : ag::conv2d(xv, wv, o);
    };
    auto run = [&](bool fused) {
      ag::Tape tape;
      ag::Var xv = tape.variable(x), wv = tape.variable(w), bv = tape.variable(b);
      const ag::Var* bias = c.bias ? &bv : nullptr;
      ag::Var y = fused ? op(xv, wv, bias, true) : ag::relu(op(xv, wv, bias, false));
      ag::Var loss = ag::sum(y * tape.constant(sample(y.shape(), 44))) + ag::sum(ag::sigmoid(y));
      tape.backward(loss);
      std::vector<Array> out{y.value(), xv.grad(), wv.grad()};
      if (bias) out.push_back(bv.grad());
      return out;
    };
    const auto plain = run(false), fused = run(true);
    CHECK(fused[0] == plain[0]);
    CHECK(fused[1] == plain[1]);
    CHECK(fused[2] == plain[2]);
    if (c.bias) CHECK(fused[3] == plain[3]);
    CHECK(fused.size() == plain.size());
    std::size_t zeros = 0;  // the ReLU does cut: some outputs are 0
    for (float v : fused[0]) zeros += v == 0.0F;
    CHECK(zeros > 0);
    CHECK(zeros < fused[0].size());
  }
  // Against finite differences: small layers whose outputs before the ReLU all lie at least
  // 0.05 from its kink (the first seeds that give that), of both signs.
  const auto away_from_kink = [](const Array& y) {
    bool negative = false, positive = false;
    for (float v : y) {
      if (std::abs(v) < 0.05F) return false;
      (v < 0 ? negative : positive) = true;
    }
    return negative && positive;
  };
  for (const bool transposed : {false, true}) {
    CAPTURE(transposed);
    const Shape xs = transposed ? Shape{2, 2, 2, 3} : Shape{2, 2, 4, 3}, ws{2, 2, 3, 3};
    const ag::Conv2dOptions co{.padding = 1, .relu = true};
    const ag::ConvTranspose2dOptions to{.stride = 2, .padding = 1, .relu = true};
    auto op = [&](ag::Var xv, ag::Var wv, ag::Var bv, bool relu) {
      ag::Conv2dOptions c = co;
      ag::ConvTranspose2dOptions t = to;
      c.relu = t.relu = relu;
      return transposed ? ag::conv_transpose2d(xv, wv, bv, t) : ag::conv2d(xv, wv, bv, c);
    };
    for (std::uint64_t seed = 50;; seed += 3) {
      REQUIRE(seed < 5000);
      const Array x = sample(xs, seed), w = sample(ws, seed + 1), b = sample(Shape{2}, seed + 2);
      ag::Tape tape;
      if (!away_from_kink(op(tape.constant(x), tape.constant(w), tape.constant(b), false).value())) continue;
      check("fused relu", [&](ag::Tape&, Inputs v) { return op(v[0], v[1], v[2], true); }, {x, w, b});
      break;
    }
  }
}

TEST_CASE("a conv op's bias gradient is the sum over images then positions, in double, bit for bit") {
  // 19 channels (two groups of 8 summed side by side, then 3 one at a time), 7 x 7 and 4 x 4
  // positions (blocks of 8 with and without a remainder), with and without a fused ReLU.
  for (const bool relu : {false, true})
    for (const std::size_t side : {14, 8}) {
      CAPTURE(relu);
      CAPTURE(side);
      const Array x = sample(Shape{5, 3, side, side}, 61), w = sample(Shape{19, 3, 4, 4}, 62), b = sample(Shape{19}, 63);
      ag::Tape tape;
      ag::Var xv = tape.constant(x), wv = tape.constant(w), bv = tape.variable(b);
      ag::Var y = ag::conv2d(xv, wv, bv, {.stride = 2, .padding = 1, .relu = relu});
      const Array g = sample(y.shape(), 64);
      tape.backward(ag::sum(y * tape.constant(g)));
      const Shape& s = y.shape();
      const std::size_t positions = s[2] * s[3];
      for (std::size_t c = 0; c < s[1]; ++c) {
        double total = 0;
        for (std::size_t n = 0; n < s[0]; ++n)
          for (std::size_t p = 0; p < positions; ++p) {
            const std::size_t i = (n * s[1] + c) * positions + p;
            total += !relu ? g.data()[i] : y.value().data()[i] > 0.0F ? 0.0F + g.data()[i] : 0.0F;
          }
        CHECK(bv.grad().data()[c] == static_cast<float>(total));
      }
    }
}

TEST_CASE("a first layer's weight and bias gradients (one pass, by channel groups) have the bits of the general path") {
  // The input a constant: conv2d's backward takes the weight's and the bias's gradients in one
  // pass over the output's gradient, the channels cut into groups (19: a whole group and a
  // short one); with the input a variable, the general path (bias pass, then chunks by images).
  // The 64 x 64 images make chunks of one image, several a part, so each part's sums run over
  // more than one chunk; at 1 and 2 threads, which must agree too.
  const Shape inputs[] = {{5, 3, 14, 14}, {24, 3, 64, 64}};
  for (const Shape& x_shape : inputs)
    for (const bool relu : {false, true}) {
      CAPTURE(x_shape[0]);
      CAPTURE(relu);
      const Array x = sample(x_shape, 71), w = sample(Shape{19, 3, 4, 4}, 72), b = sample(Shape{19}, 73);
      Array dw[2][2], db[2][2];  // [threads - 1][input_grad]
      for (const int threads : {1, 2}) {
        ag::set_num_threads(threads);
        for (const bool input_grad : {false, true}) {
          ag::Tape tape;
          ag::Var xv = input_grad ? tape.variable(x) : tape.constant(x), wv = tape.variable(w), bv = tape.variable(b);
          ag::Var y = ag::conv2d(xv, wv, bv, {.stride = 2, .padding = 1, .relu = relu});
          tape.backward(ag::sum(y * tape.constant(sample(y.shape(), 74))));
          dw[threads - 1][input_grad] = wv.grad();
          db[threads - 1][input_grad] = bv.grad();
        }
        CHECK(dw[threads - 1][0] == dw[threads - 1][1]);
        CHECK(db[threads - 1][0] == db[threads - 1][1]);
      }
      ag::set_num_threads(0);
      CHECK(dw[0][0] == dw[1][0]);
      CHECK(db[0][0] == db[1][0]);
    }
}

TEST_CASE("conv ops refuse shapes that do not fit, naming the op and the shapes") {
  ag::Tape tape;
  ag::Var x = tape.constant(Array({1, 2, 5, 5}));
  CHECK_THROWS_WITH_AS(ag::conv2d(x, tape.constant(Array({3, 1, 3, 3}))), doctest::Contains("input channels"),
                       ag::ShapeError);
  CHECK_THROWS_WITH_AS(ag::conv2d(x, tape.constant(Array({3, 2, 7, 7}))), doctest::Contains("does not fit"),
                       ag::ShapeError);
  CHECK_THROWS_WITH_AS(ag::conv2d(x, tape.constant(Array({3, 2, 3, 3})), tape.constant(Array({2}))),
                       doctest::Contains("bias"), ag::ShapeError);
  CHECK_THROWS_WITH_AS(ag::conv2d(tape.constant(Array({2, 5, 5})), tape.constant(Array({3, 2, 3, 3}))),
                       doctest::Contains("4 dimensions"), ag::ShapeError);
  CHECK_THROWS_AS(ag::conv2d(x, tape.constant(Array({3, 2, 3, 3})), {.stride = 0}), ag::ShapeError);
  CHECK_THROWS_WITH_AS(ag::conv_transpose2d(x, tape.constant(Array({2, 1, 3, 3})), {.stride = 2, .output_padding = 2}),
                       doctest::Contains("output_padding"), ag::ShapeError);
  CHECK_THROWS_WITH_AS(ag::conv_transpose2d(x, tape.constant(Array({3, 1, 3, 3}))),
                       doctest::Contains("input channels"), ag::ShapeError);
  CHECK_THROWS_AS(ag::max_pool2d(x, 3, 1, 2), ag::ShapeError);  // padding more than half the kernel
  CHECK_THROWS_AS(ag::avg_pool2d(x, 6), ag::ShapeError);
}

TEST_CASE("max_pool2d: the window's maximum, its gradient to the arg-max") {
  ag::Tape tape;
  // one 4x4 plane, 2x2 windows: the maxima 6, 8, 14, 16 and the gradient lands on them only
  Array plane({1, 1, 4, 4});
  for (std::size_t i = 0; i < 16; ++i) plane.data()[i] = static_cast<float>(i + 1);
  ag::Var x = tape.variable(plane);
  ag::Var y = ag::max_pool2d(x, 2);
  CHECK(y.value() == shaped({1, 1, 2, 2}, {6, 8, 14, 16}));
  tape.backward(ag::sum(y));
  Array want({1, 1, 4, 4});
  for (std::size_t i : {5, 7, 13, 15}) want.data()[i] = 1.0F;
  CHECK(x.grad() == want);
  // overlapping windows (stride 1), padding, non-square, C > 1, batch > 1
  const Array a = sample(Shape{2, 3, 5, 6}, 13);
  check("max_pool2d 2x2", [](ag::Tape&, Inputs v) { return ag::max_pool2d(v[0], 2); }, {a});
  check("max_pool2d 3x2 stride 1", [](ag::Tape&, Inputs v) { return ag::max_pool2d(v[0], {3, 2}, 1); }, {a});
  check("max_pool2d 3 stride 2 padding 1", [](ag::Tape&, Inputs v) { return ag::max_pool2d(v[0], 3, 2, 1); }, {a});
}

TEST_CASE("avg_pool2d and upsample_nearest2d") {
  ag::Tape tape;
  Array plane({1, 1, 2, 4});
  for (std::size_t i = 0; i < 8; ++i) plane.data()[i] = static_cast<float>(i);
  // windows {0, 1, 4, 5} and {2, 3, 6, 7}; with padding 1 the zeros count (count_include_pad)
  CHECK(ag::avg_pool2d(tape.constant(plane), 2).value() == shaped({1, 1, 1, 2}, {2.5F, 4.5F}));
  CHECK(ag::avg_pool2d(tape.constant(plane), 2, 2, 1).value()(0, 0, 0, 0) == doctest::Approx(0.0F));
  CHECK(ag::avg_pool2d(tape.constant(plane), 2, 2, 1).value()(0, 0, 1, 1) == doctest::Approx((5 + 6) / 4.0));  // row 1, columns 1-2, and two pads
  ag::Var up = ag::upsample_nearest2d(tape.constant(plane), {2, 1});
  CHECK(up.shape() == Shape{1, 1, 4, 4});
  CHECK(up.value()(0, 0, 1, 3) == 3.0F);
  CHECK(up.value()(0, 0, 3, 0) == 4.0F);
  const Array a = sample(Shape{2, 3, 5, 6}, 14);
  check("avg_pool2d 2x2", [](ag::Tape&, Inputs v) { return ag::avg_pool2d(v[0], 2); }, {a});
  check("avg_pool2d 3 stride 2 padding 1", [](ag::Tape&, Inputs v) { return ag::avg_pool2d(v[0], 3, 2, 1); }, {a});
  check("avg_pool2d (3, 2) stride 1", [](ag::Tape&, Inputs v) { return ag::avg_pool2d(v[0], {3, 2}, 1); }, {a});
  check("upsample_nearest2d 2", [](ag::Tape&, Inputs v) { return ag::upsample_nearest2d(v[0], 2); }, {a});
  check("upsample_nearest2d (1, 3)", [](ag::Tape&, Inputs v) { return ag::upsample_nearest2d(v[0], {1, 3}); }, {a});
}
