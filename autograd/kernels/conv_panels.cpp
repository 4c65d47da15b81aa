#include "autograd/kernels/conv_panels.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include <xsimd/xsimd.hpp>

namespace ag {
namespace {

using Vec = xsimd::batch<float>;
using Index = xsimd::batch<std::int32_t>;
constexpr std::size_t kW = Vec::size;
static_assert(Index::size == kW, "gathers take one 32-bit index per float lane");

// The padded plane: the span the kernel's windows read, (out - 1) stride + (k - 1) dilation + 1.
struct Padded {
  std::size_t rows, cols;
  std::size_t plane() const { return rows * cols; }

  explicit Padded(const ConvGeometry& g)
      : rows((g.out_h - 1) * g.stride_h + (g.kernel_h - 1) * g.dilation_h + 1),
        cols((g.out_w - 1) * g.stride_w + (g.kernel_w - 1) * g.dilation_w + 1) {}
};

// Walks the offsets of rows (c, i, j) or of columns (b, oh, ow) of col, one after the other:
// a three-level counter (outer, mid, inner) whose levels step the offset by outer_step,
// mid_step and inner_step.
struct Walker {
  std::size_t inner_n, mid_n;
  std::ptrdiff_t inner_step, mid_step, outer_step;
  std::size_t inner = 0, mid = 0;
  std::ptrdiff_t offset = 0;

  // Positions the walker at index `at` (= (outer mid_n + mid) inner_n + inner).
  void seek(std::size_t at) {
    inner = at % inner_n;
    mid = at / inner_n % mid_n;
    const std::size_t outer = at / inner_n / mid_n;
    offset = static_cast<std::ptrdiff_t>(outer) * outer_step + static_cast<std::ptrdiff_t>(mid) * mid_step +
             static_cast<std::ptrdiff_t>(inner) * inner_step;
  }
  void next() {
    offset += inner_step;
    if (++inner < inner_n) return;
    inner = 0;
    offset += mid_step - static_cast<std::ptrdiff_t>(inner_n) * inner_step;
    if (++mid < mid_n) return;
    mid = 0;
    offset += outer_step - static_cast<std::ptrdiff_t>(mid_n) * mid_step;
  }
};

std::ptrdiff_t sgn(std::size_t v) { return static_cast<std::ptrdiff_t>(v); }

// rows p = (c, i, j) of col: c plane + i dh Wp + j dw
Walker row_walker(const ConvGeometry& g, const Padded& pd) {
  return {g.kernel_w, g.kernel_h, sgn(g.dilation_w), sgn(g.dilation_h * pd.cols), sgn(pd.plane())};
}
// columns q = (b, oh, ow) of col: b C plane + oh sh Wp + ow sw
Walker column_walker(const ConvGeometry& g, const Padded& pd) {
  return {g.out_w, g.out_h, sgn(g.stride_w), sgn(g.stride_h * pd.cols), sgn(g.channels * pd.plane())};
}

// Whether the lanes' offsets come in runs of four neighbouring floats (lanes 4r .. 4r + 3 at
// index[4r] + 0 .. 3): the taps of a 4-wide kernel row at dilation 1, as the VAE's layers have.
bool runs_of_four(const std::int32_t* index, std::size_t live) {
  if (live % 4 != 0) return false;
  for (std::size_t l = 0; l < live; ++l)
    if (index[l] != index[l / 4 * 4] + static_cast<std::int32_t>(l % 4)) return false;
  return true;
}

// dst[p * width + l] = padded[step offset of p0 + p + lane offset of j0 + l] for p < kc, l < w,
// 0 for w <= l < width: the steps walk one of col's sides and the lanes the other. Lanes are
// taken kBlock at a time, their offsets computed once for all steps; whole vectors of them
// are gathered, or, where they come in runs of four, copied four floats a move (a gather of
// 8 floats takes about 8 cycles here; the 2 moves of the same 8 floats, about 1). The steps'
// offsets are walked first, kSteps at a time, which keeps the walker's branches out of the
// copying loops (the weight gradient's panels: 22 -> 17 us a chunk of the VAE's second layer).
void gather_panel(const float* padded, Walker steps, Walker lanes, std::size_t p0, std::size_t kc, std::size_t j0,
                  std::size_t w, std::size_t width, float* dst) {
  constexpr std::size_t kBlock = 64, kSteps = 128;
  alignas(64) std::int32_t index[kBlock];
  std::int32_t step_offset[kSteps];  // the steps' offsets, walked before the copying loops
  lanes.seek(j0);
  for (std::size_t v0 = 0; v0 < width; v0 += kBlock) {
    const std::size_t block = std::min(kBlock, width - v0), live = w > v0 ? std::min(block, w - v0) : 0;
    const std::size_t whole = live / kW * kW;
    for (std::size_t l = 0; l < live; ++l, lanes.next()) index[l] = static_cast<std::int32_t>(lanes.offset);
    const bool by_fours = runs_of_four(index, live);
    steps.seek(p0);
    for (std::size_t s0 = 0; s0 < kc; s0 += kSteps) {
      const std::size_t n_steps = std::min(kSteps, kc - s0);
      for (std::size_t p = 0; p < n_steps; ++p, steps.next()) step_offset[p] = static_cast<std::int32_t>(steps.offset);
      float* d0 = dst + s0 * width + v0;
      if (by_fours) {
        for (std::size_t p = 0; p < n_steps; ++p) {
          const float* base = padded + step_offset[p];
          float* d = d0 + p * width;
          for (std::size_t l = 0; l < live; l += 4) std::memcpy(d + l, base + index[l], 4 * sizeof(float));
        }
      } else {
        for (std::size_t p = 0; p < n_steps; ++p) {
          const float* base = padded + step_offset[p];
          float* d = d0 + p * width;
          for (std::size_t l = 0; l < whole; l += kW)
            Vec::gather(base, Index::load_aligned(index + l)).store_unaligned(d + l);
          for (std::size_t l = whole; l < live; ++l) d[l] = base[index[l]];
        }
      }
      if (live < block)
        for (std::size_t p = 0; p < n_steps; ++p) std::fill(d0 + p * width + live, d0 + p * width + block, 0.0F);
    }
  }
}

void pack_columns(const void* source, std::size_t p0, std::size_t kc, std::size_t j0, std::size_t w,
                  std::size_t width, float* dst) {
  const auto& cp = *static_cast<const ColumnPanels*>(source);
  const Padded pd(*cp.g);
  const Walker rows = row_walker(*cp.g, pd), columns = column_walker(*cp.g, pd);
  // col: steps are its rows, lanes its columns; colᵀ the other way round
  if (cp.transposed)
    gather_panel(cp.padded, columns, rows, p0, kc, j0, w, width, dst);
  else
    gather_panel(cp.padded, rows, columns, p0, kc, j0, w, width, dst);
}

}  // namespace

std::size_t conv_padded_floats(const ConvGeometry& g, std::size_t count) {
  return count * g.channels * Padded(g).plane();
}

void pad_images(const ConvGeometry& g, const float* image, std::size_t first, std::size_t count, float* padded) {
  const Padded pd(g);
  const std::size_t plane = g.height * g.width, padded_plane = pd.plane();
  // image columns [0, x_end) land at padded columns [left, left + x_end)
  const std::size_t left = std::min(g.pad_w, pd.cols);
  const std::size_t x_end = std::min(g.width, pd.cols - left);
  const std::size_t y_end = pd.rows > g.pad_h ? std::min(g.height, pd.rows - g.pad_h) : 0;
  // The rows are short (14 floats in 16 for the VAE's second layer): the plane is cleared with
  // vector stores, then each row is copied with whole vectors, the last one overlapping the one
  // before, rather than with a call to memcpy and two to memset per row (three times as long).
  for (std::size_t b = 0; b < count; ++b)
    for (std::size_t c = 0; c < g.channels; ++c) {
      const float* src = image + ((first + b) * g.channels + c) * plane;
      float* dst = padded + (b * g.channels + c) * padded_plane;
      std::size_t i = 0;
      for (; i + kW <= padded_plane; i += kW) Vec(0.0F).store_unaligned(dst + i);
      for (; i < padded_plane; ++i) dst[i] = 0.0F;
      for (std::size_t y = 0; y < y_end; ++y) {
        const float* row = src + y * g.width;
        float* out = dst + (y + g.pad_h) * pd.cols + left;
        if (x_end < kW) {
          for (std::size_t x = 0; x < x_end; ++x) out[x] = row[x];
          continue;
        }
        std::size_t x = 0;
        for (; x + kW <= x_end; x += kW) Vec::load_unaligned(row + x).store_unaligned(out + x);
        if (x < x_end) Vec::load_unaligned(row + x_end - kW).store_unaligned(out + x_end - kW);
      }
    }
}

PanelSource ColumnPanels::source() const { return {&pack_columns, this}; }

}  // namespace ag
