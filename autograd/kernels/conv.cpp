#include "autograd/kernels/conv.hpp"

#include <algorithm>
#include <cstring>

#include "autograd/kernels/parallel.hpp"

namespace ag {
namespace {

// Runs body(b0, b1) over the images [b0, b1) of a fixed split of the batch, one part per thread.
template <class Body>
void over_images(std::size_t batch, const Body& body) {
  const std::size_t parts = std::max<std::size_t>(1, std::min<std::size_t>(batch, static_cast<std::size_t>(num_threads())));
  parallel_run(static_cast<int>(parts), [&](int part) {
    const std::size_t p = static_cast<std::size_t>(part);
    body(batch * p / parts, batch * (p + 1) / parts);
  });
}

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

void im2col(const ConvGeometry& g, const float* image, float* col) {
  const std::size_t positions = g.out_h * g.out_w, cols = g.col_cols(), plane = g.height * g.width;
  over_images(g.batch, [&](std::size_t b0, std::size_t b1) {
    for (std::size_t c = 0; c < g.channels; ++c)
      for (std::size_t i = 0; i < g.kernel_h; ++i)
        for (std::size_t j = 0; j < g.kernel_w; ++j) {
          const std::size_t row = (c * g.kernel_h + i) * g.kernel_w + j;
          const ValidRange rh = valid_range(g.out_h, g.height, g.stride_h, g.pad_h, i * g.dilation_h);
          const ValidRange rw = valid_range(g.out_w, g.width, g.stride_w, g.pad_w, j * g.dilation_w);
          for (std::size_t b = b0; b < b1; ++b) {
            const float* src = image + (b * g.channels + c) * plane;
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
              const std::size_t first = rw.lo * g.stride_w + j * g.dilation_w - g.pad_w;
              if (g.stride_w == 1) {
                std::copy(in + first, in + first + (rw.hi - rw.lo), out + rw.lo);
              } else {
                for (std::size_t ow = rw.lo, iw = first; ow < rw.hi; ++ow, iw += g.stride_w) out[ow] = in[iw];
              }
              std::fill(out + rw.hi, out + g.out_w, 0.0F);
            }
          }
        }
  });
}

void col2im_add(const ConvGeometry& g, const float* col, float* image) {
  const std::size_t positions = g.out_h * g.out_w, cols = g.col_cols(), plane = g.height * g.width;
  over_images(g.batch, [&](std::size_t b0, std::size_t b1) {
    for (std::size_t b = b0; b < b1; ++b)
      for (std::size_t c = 0; c < g.channels; ++c) {
        float* dst = image + (b * g.channels + c) * plane;
        for (std::size_t i = 0; i < g.kernel_h; ++i)
          for (std::size_t j = 0; j < g.kernel_w; ++j) {
            const std::size_t row = (c * g.kernel_h + i) * g.kernel_w + j;
            const ValidRange rh = valid_range(g.out_h, g.height, g.stride_h, g.pad_h, i * g.dilation_h);
            const ValidRange rw = valid_range(g.out_w, g.width, g.stride_w, g.pad_w, j * g.dilation_w);
            if (rw.lo == rw.hi) continue;  // this tap reads only padding in every row
            const float* src = col + row * cols + b * positions;
            const std::size_t first = rw.lo * g.stride_w + j * g.dilation_w - g.pad_w;
            for (std::size_t oh = rh.lo; oh < rh.hi; ++oh) {
              float* out = dst + (oh * g.stride_h + i * g.dilation_h - g.pad_h) * g.width;
              const float* in = src + oh * g.out_w;
              for (std::size_t ow = rw.lo, iw = first; ow < rw.hi; ++ow, iw += g.stride_w) out[iw] += in[ow];
            }
          }
      }
  });
}

void to_channel_major(const float* src, std::size_t batch, std::size_t channels, std::size_t positions,
                      float* dst) {
  over_images(batch, [&](std::size_t b0, std::size_t b1) {
    for (std::size_t b = b0; b < b1; ++b)
      for (std::size_t c = 0; c < channels; ++c)
        std::memcpy(dst + (c * batch + b) * positions, src + (b * channels + c) * positions,
                    positions * sizeof(float));
  });
}

void add_from_channel_major(const float* src, std::size_t batch, std::size_t channels, std::size_t positions,
                            float* dst) {
  over_images(batch, [&](std::size_t b0, std::size_t b1) {
    for (std::size_t b = b0; b < b1; ++b)
      for (std::size_t c = 0; c < channels; ++c) {
        const float* in = src + (c * batch + b) * positions;
        float* out = dst + (b * channels + c) * positions;
        for (std::size_t p = 0; p < positions; ++p) out[p] += in[p];
      }
  });
}

}  // namespace ag
