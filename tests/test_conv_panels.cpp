// pad_images and the column panels gathered from its planes, against im2col's columns taken
// from the definition: every geometry's layout (padded, phased, shifted), through both of
// pad_images' copies (row by row for a few planes a call, planned for many).
#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "autograd/kernels/conv_panels.hpp"
#include "autograd/kernels/conv_plane_copy.hpp"
#include "autograd/random.hpp"

namespace {

// col [C kh kw, count P] of images [first, first + count): the tap's pixel or 0 in the border.
std::vector<float> direct_columns(const ag::ConvGeometry& g, const std::vector<float>& image, std::size_t first,
                                  std::size_t count) {
  const std::size_t n = count * g.positions();
  std::vector<float> col(g.col_rows() * n, 0.0F);
  for (std::size_t c = 0; c < g.channels; ++c)
    for (std::size_t i = 0; i < g.kernel_h; ++i)
      for (std::size_t j = 0; j < g.kernel_w; ++j)
        for (std::size_t b = 0; b < count; ++b)
          for (std::size_t oh = 0; oh < g.out_h; ++oh)
            for (std::size_t ow = 0; ow < g.out_w; ++ow) {
              const long y = static_cast<long>(oh * g.stride_h + i * g.dilation_h) - static_cast<long>(g.pad_h);
              const long x = static_cast<long>(ow * g.stride_w + j * g.dilation_w) - static_cast<long>(g.pad_w);
              if (y < 0 || x < 0 || y >= static_cast<long>(g.height) || x >= static_cast<long>(g.width)) continue;
              const std::size_t p = (c * g.kernel_h + i) * g.kernel_w + j, q = (b * g.out_h + oh) * g.out_w + ow;
              col[p * n + q] = image[(((first + b) * g.channels + c) * g.height + static_cast<std::size_t>(y)) *
                                         g.width +
                                     static_cast<std::size_t>(x)];
            }
  return col;
}

// col (or colᵀ) gathered whole, as one panel, from the planes pad_images wrote
std::vector<float> panel_columns(const ag::ConvGeometry& g, const std::vector<float>& image, std::size_t first,
                                 std::size_t count, bool transposed) {
  // (garbage in the buffer first: pad_images writes every float the panels read)
  std::vector<float> padded(ag::conv_padded_floats(g, count), std::numeric_limits<float>::quiet_NaN());
  ag::pad_images(g, image.data(), first, count, transposed, padded.data());
  const ag::ColumnPanels panels{&g, padded.data(), count, transposed};
  const std::size_t rows = g.col_rows(), n = count * g.positions();
  const std::size_t steps = transposed ? n : rows, lanes = transposed ? rows : n;
  std::vector<float> out(steps * lanes);
  const ag::PanelSource source = panels.source();
  source.pack(source.source, 0, steps, 0, lanes, lanes, out.data());
  return out;
}

}  // namespace

TEST_CASE("pad_images' planes give im2col's columns: strides 1-3, padding 0-2, dilation, odd sizes, 1-40 channels") {
  struct Case {
    std::size_t channels, height, width, kh, kw, sh, sw, ph, pw, dh, dw;
  };
  const Case cases[] = {
      {32, 14, 14, 4, 4, 2, 2, 1, 1, 1, 1},  // the VAE's encoder.2
      {40, 7, 9, 3, 3, 1, 1, 1, 1, 1, 1},    // stride 1: the shifted copies of one phase
      {33, 9, 5, 4, 2, 2, 1, 2, 0, 1, 1},    // stride 2 down, 1 across; padding 2 and 0
      {35, 11, 13, 5, 3, 3, 2, 2, 1, 1, 2},  // stride 3, dilation 2 across
      {34, 6, 6, 1, 1, 2, 2, 0, 0, 1, 1},    // a 1 x 1 kernel: no padding, phases read in part
      {36, 17, 15, 2, 6, 1, 2, 0, 2, 2, 1},  // a kernel too wide for the shifted copies
      {3, 14, 14, 4, 4, 2, 2, 1, 1, 1, 1},   // few planes: the row by row copy
      {1, 28, 28, 4, 4, 2, 2, 1, 1, 1, 1},   // the VAE's first layer
      {48, 3, 2, 2, 2, 1, 1, 2, 2, 1, 1},    // planes smaller than a vector
      {32, 50, 50, 3, 3, 2, 2, 1, 1, 1, 1},  // many planes, each too large for a plan: row by row
  };
  for (const Case& c : cases) {
    const std::size_t batch = 3;
    const std::size_t out_h = (c.height + 2 * c.ph - c.dh * (c.kh - 1) - 1) / c.sh + 1;
    const std::size_t out_w = (c.width + 2 * c.pw - c.dw * (c.kw - 1) - 1) / c.sw + 1;
    const ag::ConvGeometry g{batch, c.channels, c.height, c.width, c.kh, c.kw, c.sh, c.sw, c.ph, c.pw, c.dh, c.dw,
                             out_h, out_w};
    std::vector<float> image(batch * c.channels * c.height * c.width);
    for (std::size_t i = 0; i < image.size(); ++i) image[i] = static_cast<float>(i % 997) + 1.0F;
    for (const std::size_t first : {0, 1}) {
      const std::size_t count = batch - first;
      const std::vector<float> col = direct_columns(g, image, first, count);
      const std::size_t n = count * g.positions(), rows = g.col_rows();
      for (const bool transposed : {false, true}) {
        INFO("C ", c.channels, " ", c.height, "x", c.width, " kernel ", c.kh, "x", c.kw, " stride ", c.sh, ",", c.sw,
             " padding ", c.ph, ",", c.pw, " dilation ", c.dh, ",", c.dw, " first ", first, " transposed ", transposed);
        const std::vector<float> got = panel_columns(g, image, first, count, transposed);
        std::size_t wrong = 0;
        for (std::size_t p = 0; p < rows; ++p)
          for (std::size_t q = 0; q < n; ++q)
            if (!(got[transposed ? q * rows + p : p * n + q] == col[p * n + q])) ++wrong;
        CHECK(wrong == 0);
      }
    }
  }
}

#if defined(__AVX512F__)
// The plan alone, on maps pad_images never makes: each destination float a random source float
// or zero, runs of neighbours and scattered ones mixed (so some vectors take more than four
// pieces: the plan's loop with a count per vector), against the copy the map defines.
TEST_CASE("PlaneCopyPlan copies any map of source floats and zeros, one plane or four side by side") {
  ag::Rng rng(7);
  std::size_t built = 0;
  for (std::size_t trial = 0; trial < 300; ++trial) {
    const std::size_t source_floats = 16 + trial % 90, dst_floats = 1 + (trial * 37) % 700;
    std::vector<std::int32_t> map(dst_floats);
    const bool scattered = trial % 3 == 0;
    std::int32_t run = 0;
    for (std::size_t d = 0; d < dst_floats; ++d) {
      const float u = rng.uniform();
      if (u < 0.2F)
        map[d] = -1;
      else if (scattered || u < 0.3F)
        run = static_cast<std::int32_t>(rng.uniform() * static_cast<float>(source_floats - 1)), map[d] = run;
      else
        map[d] = run = (run + 1) % static_cast<std::int32_t>(source_floats);
    }
    ag::conv_detail::PlaneCopyPlan plan;
    if (!plan.build(map.data(), dst_floats, source_floats)) continue;
    ++built;
    std::vector<float> source(4 * source_floats);
    for (std::size_t i = 0; i < source.size(); ++i) source[i] = static_cast<float>(i) + 0.5F;
    std::vector<float> dst(4 * dst_floats, std::numeric_limits<float>::quiet_NaN()), one(dst_floats);
    const float* from[4];
    float* to[4];
    for (std::size_t i = 0; i < 4; ++i) from[i] = source.data() + i * source_floats, to[i] = dst.data() + i * dst_floats;
    plan.copy<4>(from, to);
    float* one_to = one.data();
    plan.copy<1>(from, &one_to);
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < 4; ++i)
      for (std::size_t d = 0; d < dst_floats; ++d) {
        const float want = map[d] < 0 ? 0.0F : from[i][map[d]];
        if (!(dst[i * dst_floats + d] == want)) ++wrong;
        if (i == 0 && !(one[d] == want)) ++wrong;
      }
    INFO("trial ", trial, " source ", source_floats, " floats, destination ", dst_floats, scattered ? " scattered" : "");
    CHECK(wrong == 0);
  }
  CHECK(built > 100);  // most maps fit a plan; the scattered long ones may not
}
#endif
