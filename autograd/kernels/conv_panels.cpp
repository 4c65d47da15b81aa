#include "autograd/kernels/conv_panels.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <iterator>

#include <xsimd/xsimd.hpp>

#include "autograd/kernels/conv_phases.hpp"
#include "autograd/kernels/conv_plane_copy.hpp"

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

// The padded plane split into its stride phases, for the panels of col (not transposed):
//   phase (a, b)[y, x] = padded (y sh + a, x sw + b),  phases one after the other,
// so a tap's values along a row of output positions, ow sw apart in the plane, are
// neighbours in one phase: col's rows read runs of out_w floats, not every sw-th float.
// (For stride 1 the one phase is the padded plane.)
// Shifted: each phase is held once per column offset jq = j dw / sw a tap can have, cut to the
// out_w columns the taps of that offset read,
//   shifted (a, b, jq)[y, x] = phase (a, b)[y, x + jq],
// so a tap's window is whole rows of out_w floats: a vector of col's lanes, the tap's values at
// neighbouring output positions, reads one run of the plane within an image (two across
// images) instead of one per row of out_w positions. With AVX-512 and the VAE's 7-wide rows a
// 16-lane vector read 3 runs, which took a gather; these planes cost a copy of each phase row
// per offset (2 for a 4-wide kernel at stride 2).
struct Phased {
  std::size_t rows, cols;  // of one phase (of one shifted copy)
  std::size_t shifts;      // copies of each phase (1: not shifted, cols = the phase's width)
  std::size_t phase_cols;  // the phase's own width
  std::size_t size() const { return rows * cols; }
  std::size_t plane(const ConvGeometry& g) const { return g.stride_h * g.stride_w * shifts * size(); }
  bool shifted() const { return shifts > 1; }

  // At most this many shifted copies of a phase; a wider kernel keeps the phases as they are.
  static constexpr std::size_t kMaxShifts = 4;

  explicit Phased(const ConvGeometry& g, const Padded& pd)
      : rows((pd.rows + g.stride_h - 1) / g.stride_h), phase_cols((pd.cols + g.stride_w - 1) / g.stride_w) {
    const std::size_t offsets = (g.kernel_w - 1) * g.dilation_w / g.stride_w + 1;
    shifts = offsets > 1 && offsets <= kMaxShifts ? offsets : 1;
    cols = shifts > 1 ? g.out_w : phase_cols;
  }
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

// Walks the offsets of rows p = (c, i, j) of col in the phased planes:
//   c plane + phase (i dh % sh, j dw % sw) + (i dh / sh) phase cols + j dw / sw,
// tracking i dh and j dw as quotient and remainder of the stride (no division per step).
struct PhasedRowWalker {
  std::size_t kh, kw, dh, dw, sh, sw;
  std::ptrdiff_t plane, phase, phase_cols;
  std::size_t shifts;
  bool shifted;
  std::size_t c = 0, i = 0, j = 0, iq = 0, ir = 0, jq = 0, jr = 0;
  std::ptrdiff_t offset = 0;

  PhasedRowWalker(const ConvGeometry& g, const Phased& ph)
      : kh(g.kernel_h), kw(g.kernel_w), dh(g.dilation_h), dw(g.dilation_w), sh(g.stride_h), sw(g.stride_w),
        plane(sgn(ph.plane(g))), phase(sgn(ph.size())), phase_cols(sgn(ph.cols)), shifts(ph.shifts),
        shifted(ph.shifted()) {}

  // (shifted: jq picks the phase's copy, else the column within the phase)
  void update() {
    offset = sgn(c) * plane + sgn((ir * sw + jr) * shifts + (shifted ? jq : 0)) * phase + sgn(iq) * phase_cols +
             (shifted ? 0 : sgn(jq));
  }
  void seek(std::size_t at) {
    j = at % kw;
    i = at / kw % kh;
    c = at / kw / kh;
    iq = i * dh / sh, ir = i * dh % sh, jq = j * dw / sw, jr = j * dw % sw;
    update();
  }
  void next() {
    if (++j < kw) {
      for (jr += dw; jr >= sw; jr -= sw) ++jq;
    } else {
      j = jq = jr = 0;
      if (++i < kh) {
        for (ir += dh; ir >= sh; ir -= sh) ++iq;
      } else {
        i = iq = ir = 0;
        ++c;
      }
    }
    update();
  }
};

// rows p = (c, i, j) of col: c plane + i dh Wp + j dw
Walker row_walker(const ConvGeometry& g, const Padded& pd) {
  return {g.kernel_w, g.kernel_h, sgn(g.dilation_w), sgn(g.dilation_h * pd.cols), sgn(pd.plane())};
}
// The same walk with the kernel's taps (i, j) looked up in a table made once: two adds a step
// instead of PhasedRowWalker's arithmetic, which the panels of col redo for every panel.
struct TapRowWalker {
  static constexpr std::size_t kMaxTaps = 64;
  std::int32_t tap_offset[kMaxTaps];
  std::size_t taps;
  std::ptrdiff_t plane;
  std::size_t t = 0;
  std::ptrdiff_t channel = 0, offset = 0;

  TapRowWalker(const ConvGeometry& g, const Phased& ph)
      : taps(g.kernel_h * g.kernel_w), plane(sgn(ph.plane(g))) {
    PhasedRowWalker walk(g, ph);
    walk.seek(0);
    for (std::size_t i = 0; i < taps; ++i, walk.next()) tap_offset[i] = static_cast<std::int32_t>(walk.offset);
  }
  void seek(std::size_t at) {
    t = at % taps;
    channel = sgn(at / taps) * plane;
    offset = channel + tap_offset[t];
  }
  void next() {
    if (++t == taps) t = 0, channel += plane;
    offset = channel + tap_offset[t];
  }
};

// columns q = (b, oh, ow) of col: b C plane + oh sh Wp + ow sw
Walker column_walker(const ConvGeometry& g, const Padded& pd) {
  return {g.out_w, g.out_h, sgn(g.stride_w), sgn(g.stride_h * pd.cols), sgn(g.channels * pd.plane())};
}
// the same in the phased planes: b C plane + oh phase cols + ow (shifted: b C plane + position)
Walker phased_column_walker(const ConvGeometry& g, const Phased& ph) {
  return {g.out_w, g.out_h, 1, sgn(ph.cols), sgn(g.channels * ph.plane(g))};
}

// Whether the vector of lanes [v, v + W) reads at most two runs of neighbouring floats:
// lanes before `split` at index[v] + l, the others at index[v + split] + l - split.
bool two_runs(const std::int32_t* index, std::size_t v, std::size_t& split) {
  split = kW;
  for (std::size_t l = 1; l < kW; ++l) {
    if (index[v + l] == index[v + l - 1] + 1) continue;
    if (split != kW) return false;
    split = l;
  }
  return true;
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
// taken kBlock at a time, their offsets computed once for all steps, and copied by the
// cheapest move their offsets allow:
//   - vectors whose lanes read at most two runs of neighbouring floats (col's rows in the
//     phased planes: runs of out_w output positions): two loads and a blend;
//   - runs of four neighbouring floats (colᵀ's lanes, the taps of a 4-wide kernel row at
//     dilation 1, as the VAE's layers have): four floats a move;
//   - any other: a gather (of 8 floats: about 8 cycles here, against about 1 for two moves).
// The steps' offsets are walked first, kSteps at a time, which keeps the walker's branches out
// of the copying loops (the weight gradient's panels: 22 -> 17 us a chunk of the VAE's second
// layer). Loads may read a vector before and after the planes: pad_images leaves that slack.
template <class Steps, class Lanes>
void gather_panel(const float* padded, Steps steps, Lanes lanes, std::size_t p0, std::size_t kc, std::size_t j0,
                  std::size_t w, std::size_t width, float* dst) {
  constexpr std::size_t kBlock = 64, kSteps = 128;
  alignas(64) std::int32_t index[kBlock];
  std::int32_t step_offset[kSteps];  // the steps' offsets, walked before the copying loops
  std::int32_t run_a[kBlock / kW], run_b[kBlock / kW];
  alignas(64) static constexpr float kLane[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  static_assert(kW <= 16);
  xsimd::batch_bool<float> first_run[kBlock / kW];
  lanes.seek(j0);
  for (std::size_t v0 = 0; v0 < width; v0 += kBlock) {
    const std::size_t block = std::min(kBlock, width - v0), live = w > v0 ? std::min(block, w - v0) : 0;
    const std::size_t whole = live / kW * kW;
    for (std::size_t l = 0; l < live; ++l, lanes.next()) index[l] = static_cast<std::int32_t>(lanes.offset);
    bool by_runs = whole > 0;
    for (std::size_t v = 0; v < whole && by_runs; v += kW) {
      std::size_t split = kW;
      by_runs = two_runs(index, v, split);
      run_a[v / kW] = index[v];
      run_b[v / kW] = index[v + split % kW] - static_cast<std::int32_t>(split % kW);
      first_run[v / kW] = Vec::load_aligned(kLane) < Vec(static_cast<float>(split));
    }
    const bool by_fours = !by_runs && runs_of_four(index, live);
    steps.seek(p0);
    for (std::size_t s0 = 0; s0 < kc; s0 += kSteps) {
      const std::size_t n_steps = std::min(kSteps, kc - s0);
      for (std::size_t p = 0; p < n_steps; ++p, steps.next()) step_offset[p] = static_cast<std::int32_t>(steps.offset);
      float* d0 = dst + s0 * width + v0;
      if (by_runs && whole == 2 * kW && block == whole) {  // a panel of two vectors (kNR on AVX2)
        const auto first0 = first_run[0], first1 = first_run[1];
        const std::int32_t a0 = run_a[0], b0 = run_b[0], a1 = run_a[1], b1 = run_b[1];
        for (std::size_t p = 0; p < n_steps; ++p) {
          const float* base = padded + step_offset[p];
          float* d = d0 + p * width;
          xsimd::select(first0, Vec::load_unaligned(base + a0), Vec::load_unaligned(base + b0)).store_unaligned(d);
          xsimd::select(first1, Vec::load_unaligned(base + a1), Vec::load_unaligned(base + b1)).store_unaligned(d + kW);
        }
      } else if (by_runs) {
        for (std::size_t p = 0; p < n_steps; ++p) {
          const float* base = padded + step_offset[p];
          float* d = d0 + p * width;
          for (std::size_t v = 0; v < whole; v += kW)
            xsimd::select(first_run[v / kW], Vec::load_unaligned(base + run_a[v / kW]),
                          Vec::load_unaligned(base + run_b[v / kW]))
                .store_unaligned(d + v);
          for (std::size_t l = whole; l < live; ++l) d[l] = base[index[l]];
        }
      } else if (by_fours) {
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
  const ConvGeometry& g = *cp.g;
  const Padded pd(g);
  const float* padded = cp.padded + kW;  // past the slack before the planes
  // col: steps are its rows, lanes its columns (in the phased planes); colᵀ the other way round
  if (cp.transposed) {
    gather_panel(padded, column_walker(g, pd), row_walker(g, pd), p0, kc, j0, w, width, dst);
  } else {
    const Phased ph(g, pd);
    if (g.kernel_h * g.kernel_w <= TapRowWalker::kMaxTaps)
      gather_panel(padded, TapRowWalker(g, ph), phased_column_walker(g, ph), p0, kc, j0, w, width, dst);
    else
      gather_panel(padded, PhasedRowWalker(g, ph), phased_column_walker(g, ph), p0, kc, j0, w, width, dst);
  }
}

#if defined(__AVX512F__)
// The source of each float of one plane as pad_images lays it out (-1 for the border), in the
// layout's order: phases (a, b), each phase's shifted copies jq, rows, columns; the plain
// padded plane is the one phase of stride 1, one copy. Returns the floats of the plane, or 0
// (nothing written) if they are more than `room`.
std::size_t plane_source_map(const ConvGeometry& g, const Padded& pd, const Phased& ph, bool phased, std::int32_t* map,
                             std::size_t room) {
  const std::size_t sh = phased ? g.stride_h : 1, sw = phased ? g.stride_w : 1, shifts = phased ? ph.shifts : 1;
  const std::size_t rows = phased ? ph.rows : pd.rows, cols = phased ? ph.cols : pd.cols;
  const std::size_t floats = sh * sw * shifts * rows * cols;
  if (floats > room) return 0;
  for (std::size_t a = 0; a < sh; ++a)
    for (std::size_t b = 0; b < sw; ++b)
      for (std::size_t jq = 0; jq < shifts; ++jq)
        for (std::size_t y = 0; y < rows; ++y)
          for (std::size_t x = 0; x < cols; ++x) {
            // padded (Y, X) holds image (Y - pad_h, X - pad_w) inside the padded plane's span
            const std::size_t py = y * sh + a, px = (x + jq) * sw + b;
            const bool inside = py < pd.rows && px < pd.cols && py >= g.pad_h && px >= g.pad_w &&
                                py - g.pad_h < g.height && px - g.pad_w < g.width;
            *map++ = inside ? static_cast<std::int32_t>((py - g.pad_h) * g.width + px - g.pad_w) : -1;
          }
  return floats;
}

// pad_images through a PlaneCopyPlan of plane_source_map. False (and nothing written) if the
// plan does not fit.
bool pad_by_plan(const ConvGeometry& g, const Padded& pd, const Phased& ph, bool phased, const float* image,
                 std::size_t planes, float* padded) {
  using conv_detail::PlaneCopyPlan;
  std::int32_t source[PlaneCopyPlan::kMaxVectors * PlaneCopyPlan::kLanes];
  const std::size_t floats = plane_source_map(g, pd, ph, phased, source, std::size(source));
  if (floats == 0) return false;
  PlaneCopyPlan plan;
  const std::size_t plane = g.height * g.width;
  if (!plan.build(source, floats, plane)) return false;
  constexpr std::size_t kSideBySide = 4;
  std::size_t i = 0;
  for (; i + kSideBySide <= planes; i += kSideBySide) {
    const float* from[kSideBySide];
    float* to[kSideBySide];
    for (std::size_t k = 0; k < kSideBySide; ++k) from[k] = image + (i + k) * plane, to[k] = padded + (i + k) * floats;
    plan.copy<kSideBySide>(from, to);
  }
  for (; i < planes; ++i) {
    const float* from = image + i * plane;
    float* to = padded + i * floats;
    plan.copy<1>(&from, &to);
  }
  return true;
}
#endif

}  // namespace

std::size_t conv_padded_floats(const ConvGeometry& g, std::size_t count) {
  const Padded pd(g);
  const Phased ph(g, pd);
  // (shifted planes: then one channel's unshifted phases, which pad_images splits it into first)
  const std::size_t staging = ph.shifted() ? g.stride_h * g.stride_w * ph.rows * ph.phase_cols + kW : 0;
  return count * g.channels * std::max(pd.plane(), ph.plane(g)) + 2 * kW + staging;
}

void pad_images(const ConvGeometry& g, const float* image, std::size_t first, std::size_t count, bool transposed,
                float* padded) {
  const Padded pd(g);
  const Phased ph(g, pd);
  const bool phased = !transposed && (g.stride_h > 1 || g.stride_w > 1 || ph.shifted());
  const std::size_t plane = g.height * g.width, padded_plane = phased ? ph.plane(g) : pd.plane();
  // image columns [0, x_end) land at padded columns [left, left + x_end)
  const std::size_t left = std::min(g.pad_w, pd.cols);
  const std::size_t x_end = std::min(g.width, pd.cols - left);
  const std::size_t y_end = pd.rows > g.pad_h ? std::min(g.height, pd.rows - g.pad_h) : 0;
  std::fill(padded, padded + kW, 0.0F);  // the slack the panels' loads may read into
  padded += kW;
  const std::size_t end = count * g.channels * padded_plane;
#if defined(__AVX512F__)
  // Building the plan takes about a microsecond (a 30 x 30 plane), which pays over a few dozen
  // planes but not over the first and last layers' 13 one-channel images a chunk (there
  // the plan's pad took twice as long as the row by row one).
  constexpr std::size_t kPlanPlanes = 32;
  if (count * g.channels >= kPlanPlanes &&
      pad_by_plan(g, pd, ph, phased, image + first * g.channels * plane, count * g.channels, padded)) {
    std::fill(padded + end, padded + end + kW, 0.0F);
    return;
  }
#endif
  // Otherwise (no AVX-512, few planes a call, or a plan that does not fit: planes smaller than a
  // vector or larger than 2048 floats) row by row.
  // The unshifted phases of one plane (shifted planes are copied from them): after the planes
  // and their slack, with a vector of its own for the copies' overlapping loads.
  const std::size_t phase_floats = ph.rows * ph.phase_cols;
  float* staging = ph.shifted() && phased ? padded + end + kW : nullptr;
  const std::size_t split_plane = staging ? g.stride_h * g.stride_w * phase_floats : padded_plane;
  // The rows are short (14 floats in 16 for the VAE's second layer): the plane is cleared with
  // vector stores, then each row is copied with whole vectors, the last one overlapping the one
  // before, rather than with a call to memcpy and two to memset per row (three times as long).
  for (std::size_t b = 0; b < count; ++b)
    for (std::size_t c = 0; c < g.channels; ++c) {
      const float* src = image + ((first + b) * g.channels + c) * plane;
      float* dst = padded + (b * g.channels + c) * padded_plane;
      float* split = staging ? staging : dst;
      std::size_t i = 0;
      for (; i + kW <= split_plane; i += kW) Vec(0.0F).store_unaligned(split + i);
      for (; i < split_plane; ++i) split[i] = 0.0F;
      for (std::size_t y = 0; y < y_end; ++y) {
        const float* row = src + y * g.width;
        if (phased) {  // padded (Y, X) to phase (Y % sh, X % sw) at (Y / sh, X / sw)
          const std::size_t yy = y + g.pad_h;
          float* out = split + (yy % g.stride_h) * g.stride_w * phase_floats + yy / g.stride_h * ph.phase_cols;
          conv_detail::row_to_phases(row, x_end, left, g.stride_w, phase_floats, out);
          continue;
        }
        float* out = dst + (y + g.pad_h) * pd.cols + left;
        if (x_end < kW) {
          for (std::size_t x = 0; x < x_end; ++x) out[x] = row[x];
          continue;
        }
        std::size_t x = 0;
        for (; x + kW <= x_end; x += kW) Vec::load_unaligned(row + x).store_unaligned(out + x);
        if (x < x_end) Vec::load_unaligned(row + x_end - kW).store_unaligned(out + x_end - kW);
      }
      if (!staging) continue;
      // shifted (a, b, jq) row y = phase (a, b) row y from column jq, out_w floats: whole
      // vectors, the last one running into the rows written after it (or the slack)
      float* out = dst;
      for (std::size_t phase = 0; phase < g.stride_h * g.stride_w; ++phase)
        for (std::size_t jq = 0; jq < ph.shifts; ++jq)
          for (std::size_t y = 0; y < ph.rows; ++y, out += ph.cols) {
            const float* in = staging + phase * phase_floats + y * ph.phase_cols + jq;
            for (std::size_t x = 0; x < ph.cols; x += kW) Vec::load_unaligned(in + x).store_unaligned(out + x);
          }
    }
  std::fill(padded + end, padded + end + kW, 0.0F);  // (after the copies, which may run into it)
}

PanelSource ColumnPanels::source() const { return {&pack_columns, this}; }

}  // namespace ag
