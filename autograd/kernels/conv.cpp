#include "autograd/kernels/conv.hpp"

#include <algorithm>
#include <cstring>

#include <xsimd/xsimd.hpp>

namespace ag {
namespace {

// im2col and col2im one image plane at a time, through its stride phases. With stride s, tap
// (i, j) at output position (oh, ow) reads padded pixel (oh s + i d, ow s + j d): for a fixed
// tap, pixels s apart. Split the padded plane into its s_h x s_w phases,
//   phase (a, b)[y, x] = padded pixel (y s_h + a, x s_w + b)   (0 where it is padding),
// and every tap reads a plain window of one phase: rows of out_w contiguous values,
//   tap (i, j) at (oh, ow) = phase (i d_h % s_h, j d_w % s_w)[oh + i d_h / s_h, ow + j d_w / s_w],
// so im2col copies whole vectors instead of gathering one value at a time, and col2im adds
// whole vectors into the phases, then writes them back to the pixels. (For stride 1 the one
// phase is the padded plane.)
struct Phases {
  std::size_t rows, cols;  // of one phase
  std::size_t size() const { return rows * cols; }

  explicit Phases(const ConvGeometry& g)
      : rows(g.out_h + (g.kernel_h - 1) * g.dilation_h / g.stride_h),
        cols(g.out_w + (g.kernel_w - 1) * g.dilation_w / g.stride_w) {}
};

using Vec = xsimd::batch<float>;
constexpr std::size_t kW = Vec::size;

// Calls body(phase, y, ih, x0, x1, w0) for every row y of every phase (a, b) (index phase =
// a s_w + b) whose pixels lie in the image: row ih of the image, phase columns [x0, x1) holding
// image columns w0, w0 + s_w, ...; columns outside [x0, x1) and rows not visited are padding.
template <class Body>
void for_each_phase_row(const ConvGeometry& g, const Phases& ph, const Body& body) {
  const auto sgn = [](std::size_t v) { return static_cast<std::ptrdiff_t>(v); };
  for (std::size_t a = 0; a < g.stride_h; ++a)
    for (std::size_t b = 0; b < g.stride_w; ++b) {
      // x0: the first phase column at or right of the image's left edge: x sw + b >= pw
      const std::size_t x0 = b >= g.pad_w ? 0 : (g.pad_w - b + g.stride_w - 1) / g.stride_w;
      // x1: one past the last at or left of the right edge: x sw + b < pw + width
      const std::size_t end = g.pad_w + g.width > b ? (g.pad_w + g.width - b + g.stride_w - 1) / g.stride_w : 0;
      const std::size_t x1 = std::min(ph.cols, end);
      if (x0 >= x1) continue;
      for (std::size_t y = 0; y < ph.rows; ++y) {
        const std::ptrdiff_t ih = sgn(y * g.stride_h + a) - sgn(g.pad_h);
        if (ih < 0 || ih >= sgn(g.height)) continue;
        body(a * g.stride_w + b, y, static_cast<std::size_t>(ih), x0, x1, x0 * g.stride_w + b - g.pad_w);
      }
    }
}

// phases = the plane's pixels, split by phase (zero where padding).
void split_phases(const ConvGeometry& g, const Phases& ph, const float* plane, float* phases) {
  std::fill(phases, phases + g.stride_h * g.stride_w * ph.size(), 0.0F);
  for_each_phase_row(g, ph, [&](std::size_t phase, std::size_t y, std::size_t ih, std::size_t x0, std::size_t x1,
                                std::size_t w0) {
    float* dst = phases + phase * ph.size() + y * ph.cols;
    const float* src = plane + ih * g.width + w0;
    for (std::size_t x = x0; x < x1; ++x, src += g.stride_w) dst[x] = *src;
  });
}

// The plane's pixels = their values in the phases.
void merge_phases(const ConvGeometry& g, const Phases& ph, const float* phases, float* plane) {
  for_each_phase_row(g, ph, [&](std::size_t phase, std::size_t y, std::size_t ih, std::size_t x0, std::size_t x1,
                                std::size_t w0) {
    const float* src = phases + phase * ph.size() + y * ph.cols;
    float* dst = plane + ih * g.width + w0;
    for (std::size_t x = x0; x < x1; ++x, dst += g.stride_w) *dst = src[x];
  });
}

// Calls body(window, run) for each tap (i, j), in order: `window` is where the tap's first
// value sits in the phases (its rows ph.cols apart), `run` the tap's row of the columns.
template <class Body>
void for_each_tap(const ConvGeometry& g, const Phases& ph, const Body& body) {
  for (std::size_t i = 0; i < g.kernel_h; ++i)
    for (std::size_t j = 0; j < g.kernel_w; ++j) {
      const std::size_t phase = (i * g.dilation_h % g.stride_h) * g.stride_w + j * g.dilation_w % g.stride_w;
      const std::size_t y0 = i * g.dilation_h / g.stride_h, x0 = j * g.dilation_w / g.stride_w;
      body(phase * ph.size() + y0 * ph.cols + x0, i * g.kernel_w + j);
    }
}

// lanes [0, n) of a vector set, the others clear
xsimd::batch_bool<float> first_lanes(std::size_t n) {
  alignas(64) static constexpr float kLane[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  static_assert(kW <= 16);
  return Vec::load_aligned(kLane) < Vec(static_cast<float>(n));
}

}  // namespace

std::size_t conv_work_floats(const ConvGeometry& g) {
  // one plane split into its stride phases, and a vector of slack: the row copies below may
  // read a vector that starts in the last row's window and runs past it
  return Phases(g).size() * g.stride_h * g.stride_w + kW;
}

void im2col(const ConvGeometry& g, const float* image, std::size_t first, std::size_t count, float* col,
            float* work) {
  const Phases ph(g);
  const std::size_t positions = g.positions(), cols = count * positions, plane = g.height * g.width;
  const std::size_t taps = g.kernel_h * g.kernel_w;
  float* phases = work;
  for (std::size_t b = 0; b < count; ++b)
    for (std::size_t c = 0; c < g.channels; ++c) {
      split_phases(g, ph, image + ((first + b) * g.channels + c) * plane, phases);
      for_each_tap(g, ph, [&](std::size_t window, std::size_t tap) {
        float* dst = col + (c * taps + tap) * cols + b * positions;
        const float* src = phases + window;
        // Row by row; a row's last vector may run into the next rows and the next images' runs
        // of this tap's row of the columns, which are written after it. Only where it would run
        // past that row (into the next tap's, written before) is it done by value.
        for (std::size_t oh = 0; oh < g.out_h; ++oh, src += ph.cols, dst += g.out_w) {
          std::size_t q = 0;
          for (; q + kW <= g.out_w; q += kW) Vec::load_unaligned(src + q).store_unaligned(dst + q);
          if (q == g.out_w) continue;
          if (b * positions + oh * g.out_w + q + kW <= cols)
            Vec::load_unaligned(src + q).store_unaligned(dst + q);
          else
            for (; q < g.out_w; ++q) dst[q] = src[q];
        }
      });
    }
}

void col2im_add(const ConvGeometry& g, const float* col, std::size_t first, std::size_t count, float* image,
                float* work) {
  // Each pixel gets its taps' values in tap order (i, j), added to what it held, as a loop over
  // taps inside each pixel would add them: the phases start from the pixels' values, take the
  // taps one after the other, and are written back.
  const Phases ph(g);
  const std::size_t positions = g.positions(), cols = count * positions, plane = g.height * g.width;
  const std::size_t taps = g.kernel_h * g.kernel_w, tail = g.out_w % kW;
  const auto tail_lanes = first_lanes(tail);
  float* phases = work;
  for (std::size_t b = 0; b < count; ++b)
    for (std::size_t c = 0; c < g.channels; ++c) {
      float* pixels = image + ((first + b) * g.channels + c) * plane;
      split_phases(g, ph, pixels, phases);
      for_each_tap(g, ph, [&](std::size_t window, std::size_t tap) {
        const float* src = col + (c * taps + tap) * cols + b * positions;
        float* dst = phases + window;
        for (std::size_t oh = 0; oh < g.out_h; ++oh, dst += ph.cols, src += g.out_w) {
          std::size_t q = 0;
          for (; q + kW <= g.out_w; q += kW)
            (Vec::load_unaligned(dst + q) + Vec::load_unaligned(src + q)).store_unaligned(dst + q);
          if (q == g.out_w) continue;
          // the last, partial vector: the lanes past the row keep their values (the phase
          // buffer has a vector of slack); the columns are read whole within this tap's row
          if (b * positions + oh * g.out_w + q + kW <= cols) {
            const Vec old = Vec::load_unaligned(dst + q);
            xsimd::select(tail_lanes, old + Vec::load_unaligned(src + q), old).store_unaligned(dst + q);
          } else {
            for (; q < g.out_w; ++q) dst[q] += src[q];
          }
        }
      });
      merge_phases(g, ph, phases, pixels);
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
