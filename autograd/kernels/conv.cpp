#include "autograd/kernels/conv.hpp"

#include <algorithm>
#include <cstring>

namespace ag {
namespace {

// The output positions o in [0, n) whose input coordinate o * stride - pad + offset lies in
// [0, size): [lo, hi). Outside it a tap reads padding.
struct ValidRange {
  std::size_t lo, hi;
};

ValidRange valid_range(std::size_t n, std::size_t size, std::size_t stride, std::size_t pad, std::size_t offset) {
  // o * stride + offset >= pad  and  o * stride + offset < size + pad
  const std::size_t lo = offset >= pad ? 0 : (pad - offset + stride - 1) / stride;
  const std::size_t end = size + pad;
  const std::size_t hi = offset >= end ? 0 : std::min(n, (end - offset + stride - 1) / stride);
  return {std::min(lo, hi), hi};
}

}  // namespace

void im2col(const ConvGeometry& g, const float* image, std::size_t first, std::size_t count, float* col) {
  const std::size_t positions = g.positions(), cols = count * positions, plane = g.height * g.width;
  for (std::size_t c = 0; c < g.channels; ++c)
    for (std::size_t i = 0; i < g.kernel_h; ++i)
      for (std::size_t j = 0; j < g.kernel_w; ++j) {
        const std::size_t row = (c * g.kernel_h + i) * g.kernel_w + j;
        const ValidRange rh = valid_range(g.out_h, g.height, g.stride_h, g.pad_h, i * g.dilation_h);
        const ValidRange rw = valid_range(g.out_w, g.width, g.stride_w, g.pad_w, j * g.dilation_w);
        for (std::size_t b = 0; b < count; ++b) {
          const float* src = image + ((first + b) * g.channels + c) * plane;
          float* dst = col + row * cols + b * positions;
          for (std::size_t oh = 0; oh < g.out_h; ++oh) {
            float* out = dst + oh * g.out_w;
            if (oh < rh.lo || oh >= rh.hi || rw.lo == rw.hi) {
              std::fill(out, out + g.out_w, 0.0F);
              continue;
            }
            const float* in = src + (oh * g.stride_h + i * g.dilation_h - g.pad_h) * g.width;
            std::fill(out, out + rw.lo, 0.0F);
            // iw = ow * stride + j * dilation - pad, valid for ow in [rw.lo, rw.hi)
            const std::size_t start = rw.lo * g.stride_w + j * g.dilation_w - g.pad_w;
            if (g.stride_w == 1) {
              std::copy(in + start, in + start + (rw.hi - rw.lo), out + rw.lo);
            } else {
              for (std::size_t ow = rw.lo, iw = start; ow < rw.hi; ++ow, iw += g.stride_w) out[ow] = in[iw];
            }
            std::fill(out + rw.hi, out + g.out_w, 0.0F);
          }
        }
      }
}

void col2im_add(const ConvGeometry& g, const float* col, std::size_t first, std::size_t count, float* image) {
  const std::size_t positions = g.positions(), cols = count * positions, plane = g.height * g.width;
  for (std::size_t b = 0; b < count; ++b)
    for (std::size_t c = 0; c < g.channels; ++c) {
      float* dst = image + ((first + b) * g.channels + c) * plane;
      for (std::size_t i = 0; i < g.kernel_h; ++i)
        for (std::size_t j = 0; j < g.kernel_w; ++j) {
          const std::size_t row = (c * g.kernel_h + i) * g.kernel_w + j;
          const ValidRange rh = valid_range(g.out_h, g.height, g.stride_h, g.pad_h, i * g.dilation_h);
          const ValidRange rw = valid_range(g.out_w, g.width, g.stride_w, g.pad_w, j * g.dilation_w);
          if (rw.lo == rw.hi) continue;  // this tap reads only padding in every row
          const float* src = col + row * cols + b * positions;
          const std::size_t start = rw.lo * g.stride_w + j * g.dilation_w - g.pad_w;
          for (std::size_t oh = rh.lo; oh < rh.hi; ++oh) {
            float* out = dst + (oh * g.stride_h + i * g.dilation_h - g.pad_h) * g.width;
            const float* in = src + oh * g.out_w;
            for (std::size_t ow = rw.lo, iw = start; ow < rw.hi; ++ow, iw += g.stride_w) out[iw] += in[ow];
          }
        }
    }
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
