#include "autograd/kernels/conv.hpp"

#include <algorithm>
#include <cstring>

namespace ag {
namespace {

// A kernel tap's source offsets: for output positions [p0, p0 + n), the offset within an
// image plane of the pixel tap (i, j) reads, or -1 where it reads padding. One table serves
// every channel and image of a chunk, so the copies below are a plain gather per position,
// without the per-row bounds arithmetic (the VAE's rows are 7 and 14 positions short).
constexpr std::size_t kTable = 512;

void tap_offsets(const ConvGeometry& g, std::size_t i, std::size_t j, std::size_t p0, std::size_t n,
                 std::ptrdiff_t* offsets) {
  const auto signed_size = [](std::size_t v) { return static_cast<std::ptrdiff_t>(v); };
  for (std::size_t q = 0; q < n; ++q) {
    const std::size_t oh = (p0 + q) / g.out_w, ow = (p0 + q) % g.out_w;
    const std::ptrdiff_t ih = signed_size(oh * g.stride_h + i * g.dilation_h) - signed_size(g.pad_h);
    const std::ptrdiff_t iw = signed_size(ow * g.stride_w + j * g.dilation_w) - signed_size(g.pad_w);
    const bool inside = ih >= 0 && iw >= 0 && ih < signed_size(g.height) && iw < signed_size(g.width);
    offsets[q] = inside ? ih * signed_size(g.width) + iw : -1;
  }
}

// Calls body(pixels, column, offsets, n) for each tap (i, j), run of up to kTable output
// positions, channel and image of the chunk, in that order: `pixels` is where the image's
// channel plane starts, `column` where the run's n values start in the columns, and offsets[q]
// the pixel that position q reads (-1: padding).
template <class Body>
void for_each_tap_run(const ConvGeometry& g, std::size_t first, std::size_t count, const Body& body) {
  const std::size_t positions = g.positions(), cols = count * positions, plane = g.height * g.width;
  std::ptrdiff_t offsets[kTable];
  for (std::size_t i = 0; i < g.kernel_h; ++i)
    for (std::size_t j = 0; j < g.kernel_w; ++j)
      for (std::size_t p0 = 0; p0 < positions; p0 += kTable) {
        const std::size_t n = std::min(kTable, positions - p0);
        tap_offsets(g, i, j, p0, n, offsets);
        for (std::size_t c = 0; c < g.channels; ++c) {
          const std::size_t row = (c * g.kernel_h + i) * g.kernel_w + j;
          for (std::size_t b = 0; b < count; ++b)
            body(((first + b) * g.channels + c) * plane, row * cols + b * positions + p0,
                 static_cast<const std::ptrdiff_t*>(offsets), n);
        }
      }
}

}  // namespace

void im2col(const ConvGeometry& g, const float* image, std::size_t first, std::size_t count, float* col) {
  for_each_tap_run(g, first, count, [&](std::size_t pixels, std::size_t column, const std::ptrdiff_t* offsets,
                                        std::size_t n) {
    const float* src = image + pixels;
    float* dst = col + column;
    for (std::size_t q = 0; q < n; ++q) dst[q] = offsets[q] >= 0 ? src[offsets[q]] : 0.0F;
  });
}

void col2im_add(const ConvGeometry& g, const float* col, std::size_t first, std::size_t count, float* image) {
  // Each pixel gets its taps' values in tap order (i, j), as a loop over taps inside each pixel
  // would add them; within one tap no two positions read the same pixel.
  for_each_tap_run(g, first, count, [&](std::size_t pixels, std::size_t column, const std::ptrdiff_t* offsets,
                                        std::size_t n) {
    float* dst = image + pixels;
    const float* src = col + column;
    for (std::size_t q = 0; q < n; ++q)
      if (offsets[q] >= 0) dst[offsets[q]] += src[q];
  });
}

void gather_channel_major(const float* src, std::size_t channels, std::size_t positions, std::size_t first,
                          std::size_t count, float* dst) {
  for (std::size_t b = 0; b < count; ++b)
    for (std::size_t c = 0; c < channels; ++c)
      std::memcpy(dst + (c * count + b) * positions, src + ((first + b) * channels + c) * positions,
                  positions * sizeof(float));
}

void scatter_channel_major(const float* src, std::size_t channels, std::size_t positions, std::size_t first,
                           std::size_t count, const float* bias, bool accumulate, float* dst) {
  for (std::size_t b = 0; b < count; ++b)
    for (std::size_t c = 0; c < channels; ++c) {
      const float* in = src + (c * count + b) * positions;
      float* out = dst + ((first + b) * channels + c) * positions;
      const float add = bias ? bias[c] : 0.0F;
      if (accumulate) {
        for (std::size_t p = 0; p < positions; ++p) out[p] += in[p] + add;
      } else {
        for (std::size_t p = 0; p < positions; ++p) out[p] = in[p] + add;
      }
    }
}

}  // namespace ag
