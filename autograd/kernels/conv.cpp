#include "autograd/kernels/conv.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include <xsimd/xsimd.hpp>

#include "autograd/kernels/conv_phases.hpp"
#include "autograd/kernels/gemm_kernel.hpp"
#include "autograd/kernels/gemm_pack.hpp"

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

// lanes [0, n) of a vector V set, the others clear
template <class V = Vec>
typename V::batch_bool_type first_lanes(std::size_t n) {
  alignas(64) static constexpr float kLane[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  static_assert(V::size <= 16);
  return V::load_aligned(kLane) < V(static_cast<float>(n));
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

// ---- col2im_gemm ----
// The GEMM is gemm's own micro-kernel over op(A) = Wᵀ in its MR-row panels and X' in NR-column
// panels, with the whole sum over m in one block: gemm (gemm_rect) computes the same tiles,
// with the same values in the same order, for m up to its K block (384), as the VAE's layers
// have. Its row panels come outermost, as in gemm, so the taps reach each pixel in tap order.
// The pixels are held in their stride phases while the taps are added (a tap's values for
// one row of output positions land on one contiguous run of a phase).

namespace {

using gemm_detail::kMR;
using gemm_detail::kNR;

std::size_t round_up(std::size_t x, std::size_t to) { return (x + to - 1) / to * to; }

// Half a vector, for runs of at most kW / 2 values. A run's add reads and writes a whole
// vector: with AVX-512 and the 7x7 layers' runs of 7 in phase rows 8 floats apart, a
// 16-float vector overlapped the run of the next row, whose load then waited for the store
// before it to reach the cache (a failed store forwarding on every run: col2im's adds took
// twice as long as its GEMM). Half vectors of 8 touch one phase row each.
#if XSIMD_WITH_AVX512F
using Half = xsimd::batch<float, xsimd::avx2>;
#else
using Half = Vec;
#endif
constexpr std::size_t kHalfW = Half::size;

// d[oh cols + b image_floats + q] += values[(b out_h + oh) out_w + q] for q < out_w (< V's
// lanes), one read-modify-write of a V per run, the lanes past the run written back as read.
// Where a V is wider than a phase row (the VAE's out layer: runs of 14 in rows of 15, 16-float
// vectors), the next row's load would overlap the store just before it and wait for it to
// reach the cache (a failed store forwarding on every run; masked loads and stores wait the
// same): the even rows go first, then the odd ones, so a load never meets the store before it.
// Each pixel still gets one add per tap, so the sums are the same; out's forward 0.57 ->
// 0.42 ms at batch 128, 1 thread.
template <class V>
void add_short_runs(const float* values, std::size_t out_w, std::size_t out_h, std::size_t count,
                    std::size_t cols, std::size_t image_floats, float* d) {
  const auto lanes = first_lanes<V>(out_w);
  const std::size_t step = V::size > cols ? 2 : 1;
  for (std::size_t b = 0; b < count; ++b)
    for (std::size_t parity = 0; parity < step; ++parity)
      for (std::size_t oh = parity; oh < out_h; oh += step) {
        float* at = d + b * image_floats + oh * cols;
        const float* run = values + (b * out_h + oh) * out_w;
        const V old = V::load_unaligned(at);
        xsimd::select(lanes, old + V::load_unaligned(run), old).store_unaligned(at);
      }
}

// The columns of the last column panel of n, if it is narrow enough for narrow_kernel (else 0).
std::size_t narrow_edge(std::size_t n) {
#if defined(__AVX512F__)
  const std::size_t edge = n % kNR;
  return edge <= gemm_detail::kNarrowCols ? edge : 0;
#else
  (void)n;
  return 0;
#endif
}

// Where the parts of col2im_gemm's working memory sit: the X' panels (aligned for the
// micro-kernel's vector loads), the MR rows of the columns one row panel of A gives, the
// chunk's planes in their phases, then the narrow last column panel's columns for all rows
// (narrow_edge: kNarrowCols a row).
struct Col2imWork {
  std::size_t width, panel_floats, strip_floats, phase_floats, edge_floats;

  Col2imWork(const ConvGeometry& g, std::size_t m, std::size_t count)
      : width(round_up(count * g.positions(), kNR)),
        panel_floats(width * m),
        strip_floats(width * kMR + kW),
        phase_floats(count * g.channels * g.stride_h * g.stride_w * Phases(g).size() + kW),
        edge_floats(narrow_edge(count * g.positions()) ? round_up(g.col_rows(), kMR) * gemm_detail::kNarrowCols : 0) {}
  std::size_t floats() const {  // kW: alignment
    return kW + panel_floats + strip_floats + phase_floats + edge_floats;
  }
  float* panels(float* work) const {
    const auto at = reinterpret_cast<std::uintptr_t>(work);
    return work + (round_up(at, kW * sizeof(float)) - at) / sizeof(float);
  }
  float* strip(float* work) const { return panels(work) + panel_floats; }
  float* phases(float* work) const { return strip(work) + strip_floats; }
  float* edge(float* work) const { return phases(work) + phase_floats; }
};

// edge [round_up(k, kMR), kNarrowCols] = the k rows of packed A (kMR-row panels of m steps)
// times the first kNarrowCols columns of the packed B panel b: the narrow last column panel of
// col2im_gemm's columns, for every row panel at once (4 panels a call: as many chains as hide
// the multiply-add's latency), instead of a micro_kernel<1> per row panel (about 4.5 times the
// time for these columns). The same sums.
void narrow_columns(std::size_t k, std::size_t m, const float* packed_a, const float* b, float* edge) {
#if defined(__AVX512F__)
  using gemm_detail::narrow_kernel;
  constexpr std::size_t kPanels = 4, ld = gemm_detail::kNarrowCols;
  const std::size_t panels = (k + kMR - 1) / kMR, a_panel = kMR * m;
  std::size_t q = 0;
  for (; q + kPanels <= panels; q += kPanels)
    narrow_kernel<kPanels>(m, packed_a + q * a_panel, a_panel, b, ld, edge + q * kMR * ld, ld, false);
  for (; q < panels; ++q) narrow_kernel<1>(m, packed_a + q * a_panel, a_panel, b, ld, edge + q * kMR * ld, ld, false);
#else
  (void)k, (void)m, (void)packed_a, (void)b, (void)edge;
#endif
}

// panels = X' [m, n = count P] in NR-column panels (zero past column n), X' being the images
// of src [count, m, P]: panel j holds columns [j NR, (j + 1) NR) for every
// step, dst[j NR m + p NR + l]. A vector of columns within one image is one load; one across
// two images (P >= W) two loads and a blend, which on AVX-512 took the place of a gather (16
// lanes from 2 runs of P = 49: the VAE's 7x7 layers, whose 48-column panels nearly all cross
// an image). Only a vector of more runs, or the last one, reaching past column n, gathers.
void pack_channel_major(const float* src, std::size_t m, std::size_t positions, std::size_t count, float* panels) {
  using Index = xsimd::batch<std::int32_t>;
  constexpr std::size_t kNV = kNR / kW;
  const std::size_t n = count * positions, stride = m * positions;
  for (std::size_t j0 = 0; j0 < n; j0 += kNR) {
    float* dst = panels + j0 * m;
    const std::size_t live = std::min(kNR, n - j0);
    // per vector: lanes before split[v] read src + run_a[v] + l, the others src + run_b[v] + l
    std::size_t run_a[kNV], run_b[kNV], split[kNV];
    bool by_runs = true;
    for (std::size_t v = 0; v < kNV && by_runs; ++v) {
      const std::size_t j = j0 + v * kW, b = j / positions, q = j % positions;
      run_a[v] = b * stride + q;
      split[v] = std::min(kW, positions - q);
      run_b[v] = run_a[v] + stride - positions;  // lane l >= split: image b + 1, position l - split
      by_runs = j + kW <= n && (split[v] == kW || positions >= kW);
    }
    if (by_runs) {
      xsimd::batch_bool<float> first[kNV];
      for (std::size_t v = 0; v < kNV; ++v) first[v] = first_lanes(split[v]);
      for (std::size_t p = 0; p < m; ++p)
        for (std::size_t v = 0; v < kNV; ++v) {
          const float* row = src + p * positions;
          const Vec a = Vec::load_unaligned(row + run_a[v]);
          (split[v] == kW ? a : xsimd::select(first[v], a, Vec::load_unaligned(row + run_b[v])))
              .store_aligned(dst + p * kNR + v * kW);
        }
      continue;
    }
    const float* base = src;
    alignas(64) std::int32_t index[kNR];
    for (std::size_t l = 0; l < kNR; ++l) {  // lanes past n read column j0 again, then are cleared
      const std::size_t at = j0 + (l < live ? l : 0);
      index[l] = static_cast<std::int32_t>(at / positions * stride + at % positions);
    }
    const auto live_lanes = [&](std::size_t v) { return first_lanes(live > v ? live - v : 0); };
    for (std::size_t p = 0; p < m; ++p)
      for (std::size_t v = 0; v < kNR; v += kW) {
        const Vec x = Vec::gather(base + p * positions, Index::load_aligned(index + v));
        xsimd::select(live_lanes(v), x, Vec(0.0F)).store_aligned(dst + p * kNR + v);
      }
  }
}

// The chunk's images are taken a group at a time, the X' panels of a group at most this many
// floats (with a few more for one image of many positions), so the working memory stays
// small: the VAE's 7x7 layers take their 4 images at once (12.5 K floats), its last layer 2
// of its 13 (a chunk's panels, 80 K floats, had made the conv VAE's peak RSS 8 MB larger).
// Each pixel takes its taps from its own image's columns only, so the sums are the same.
constexpr std::size_t kGroupFloats = 16 * 1024;

std::size_t group_images(const ConvGeometry& g, std::size_t m, std::size_t count) {
  return std::clamp<std::size_t>(kGroupFloats / (g.positions() * m), 1, count);
}

// col2im_gemm on images [first, first + count), all at once.
void col2im_gemm_group(const ConvGeometry& g, std::size_t m, const float* packed_wt, const float* src,
                       std::size_t first, std::size_t count, const float* bias, bool accumulate, bool relu,
                       float* image, float* work);

}  // namespace

std::size_t col2im_gemm_work_floats(const ConvGeometry& g, std::size_t m, std::size_t count) {
  return Col2imWork(g, m, group_images(g, m, count)).floats();
}

std::size_t col2im_gemm_weight_floats(const ConvGeometry& g, std::size_t m) {
  return round_up(g.col_rows(), kMR) * m + gemm_detail::kPackSlack;
}

void col2im_gemm_pack(const ConvGeometry& g, std::size_t m, const float* w, float* packed) {
  const std::size_t k = g.col_rows();  // op(A) = Wᵀ [k, m]: row i is column i of W
  for (std::size_t i = 0; i < k; i += kMR) gemm_detail::copy_panel<kMR>(w + i, k, m, std::min(kMR, k - i), packed + i * m);
}

void col2im_gemm(const ConvGeometry& g, std::size_t m, const float* packed_wt, const float* src, std::size_t first,
                 std::size_t count, const float* bias, bool accumulate, bool relu, float* image, float* work) {
  const std::size_t group = group_images(g, m, count);
  for (std::size_t f = 0; f < count; f += group)
    col2im_gemm_group(g, m, packed_wt, src + f * m * g.positions(), first + f, std::min(group, count - f), bias,
                      accumulate, relu, image, work);
}

namespace {

void col2im_gemm_group(const ConvGeometry& g, std::size_t m, const float* packed_wt, const float* src,
                       std::size_t first, std::size_t count, const float* bias, bool accumulate, bool relu,
                       float* image, float* work) {
  const Phases ph(g);
  const Col2imWork layout(g, m, count);
  const std::size_t positions = g.positions(), n = count * positions, k = g.col_rows();
  const std::size_t taps = g.kernel_h * g.kernel_w, plane = g.height * g.width;
  const std::size_t plane_phases = g.stride_h * g.stride_w * ph.size();  // one plane's phases
  float* panels = layout.panels(work);
  float* phases = layout.phases(work);
  float* strip = layout.strip(work);
  pack_channel_major(src, m, positions, count, panels);
  // The pixels in the phases: rows [0, h_end) and columns [0, w_end) of the image (those past
  // them, as an output_padding's last rows or columns, no tap reaches). Where the phases hold
  // padding nothing is read back, so it is left as it is.
  const auto below = [](std::size_t span, std::size_t pad, std::size_t size) {
    return span > pad ? std::min(size, span - pad) : 0;
  };
  const std::size_t h_end = below(g.stride_h * ph.rows, g.pad_h, g.height);
  const std::size_t w_end = below(g.stride_w * ph.cols, g.pad_w, g.width);
  const auto phase_row = [&](float* ph_plane, std::size_t ih) {  // where image row ih's phase 0 lies
    const std::size_t y = ih + g.pad_h;
    return ph_plane + y % g.stride_h * g.stride_w * ph.size() + y / g.stride_h * ph.cols;
  };
  for (std::size_t b = 0; b < count; ++b)
    for (std::size_t c = 0; c < g.channels; ++c) {
      float* pixels = image + ((first + b) * g.channels + c) * plane;
      float* ph_plane = phases + (b * g.channels + c) * plane_phases;
      if (accumulate) {
        for (std::size_t ih = 0; ih < h_end; ++ih)
          conv_detail::row_to_phases(pixels + ih * g.width, w_end, g.pad_w, g.stride_w, ph.size(), phase_row(ph_plane, ih));
      } else {
        std::fill(ph_plane, ph_plane + plane_phases, bias ? bias[c] : 0.0F);
        if (h_end < g.height || w_end < g.width) std::fill(pixels, pixels + plane, bias ? bias[c] : 0.0F);
      }
    }
  // tap p = (c, i, j) of column q = (b, oh, ow) adds into phases[row(p) + column(q)]
  const std::size_t whole = g.out_w / kW * kW;  // a run's whole vectors
  const auto tail_lanes = first_lanes(g.out_w - whole);
  // Each tap's window, looked up once: finding it anew for every row (for_each_tap over all
  // taps, with 64-bit divisions) was about a tenth of col2im_gemm on AVX-512.
  constexpr std::size_t kMaxTaps = 64;
  std::size_t tap_window[kMaxTaps];
  if (taps <= kMaxTaps) for_each_tap(g, ph, [&](std::size_t w, std::size_t t) { tap_window[t] = w; });
  const std::size_t edge_cols = narrow_edge(n), edge_j0 = n - edge_cols;
  float* edge = layout.edge(work);
  if (edge_cols) narrow_columns(k, m, packed_wt, panels + edge_j0 * m, edge);
  std::size_t row[kMR];
  for (std::size_t i0 = 0, c = 0, tap = 0; i0 < k; i0 += kMR) {
    const std::size_t rows = std::min(kMR, k - i0);
    for (std::size_t r = 0; r < rows; ++r) {  // row p = i0 + r is tap `tap` of channel c
      std::size_t window = 0;
      if (taps <= kMaxTaps)
        window = tap_window[tap];
      else
        for_each_tap(g, ph, [&](std::size_t w, std::size_t t) {
          if (t == tap) window = w;
        });
      row[r] = c * plane_phases + window;
      if (++tap == taps) tap = 0, ++c;
    }
    // the row panel's MR rows of the columns, every tile of them, then each row added into the
    // pixels in turn: a pixel's taps come from different columns, and must come in row order
    const float* a = packed_wt + i0 * m;
    for (std::size_t j0 = 0; j0 < n; j0 += kNR) {
      const float* b = panels + j0 * m;
      if (edge_cols && j0 == edge_j0) {  // computed above: its rows of them
        for (std::size_t r = 0; r < kMR; ++r)
          for (std::size_t j = 0; j < edge_cols; ++j)
            strip[r * layout.width + j0 + j] = edge[(i0 + r) * gemm_detail::kNarrowCols + j];
        continue;
      }
      if (n - j0 <= kW)  // a last panel of at most one vector's columns: compute only that
        gemm_detail::micro_kernel<1, true>(m, a, b, {}, strip + j0, layout.width, false);
      else
        gemm_detail::micro_kernel<gemm_detail::kNV, true>(m, a, b, {}, strip + j0, layout.width, false);
    }
    const std::size_t image_phases = g.channels * plane_phases;
    for (std::size_t r = 0; r < rows; ++r) {
      const float* values = strip + r * layout.width;
      if (whole == 0) {  // runs shorter than a vector (the VAE's 7x7 layers): one masked add each
        float* d = phases + row[r];
        if (g.out_w <= kHalfW) add_short_runs<Half>(values, g.out_w, g.out_h, count, ph.cols, image_phases, d);
        else add_short_runs<Vec>(values, g.out_w, g.out_h, count, ph.cols, image_phases, d);
        continue;
      }
      for (std::size_t b = 0; b < count; ++b)
        for (std::size_t oh = 0; oh < g.out_h; ++oh, values += g.out_w) {
          float* d = phases + row[r] + b * image_phases + oh * ph.cols;
          for (std::size_t v = 0; v < whole; v += kW)
            (Vec::load_unaligned(d + v) + Vec::load_unaligned(values + v)).store_unaligned(d + v);
          if (whole == g.out_w) continue;
          // the last, partial vector keeps the values past the run (both buffers have a
          // vector of slack)
          const Vec old = Vec::load_unaligned(d + whole);
          xsimd::select(tail_lanes, old + Vec::load_unaligned(values + whole), old).store_unaligned(d + whole);
        }
    }
  }
  // A ReLU after the op costs no pass of its own: applied as the rows move out of the phases
  // where they cover the plane, else over the plane while it is still in L1.
  const bool relu_rows = relu && h_end == g.height && w_end == g.width;
  for (std::size_t b = 0; b < count; ++b)
    for (std::size_t c = 0; c < g.channels; ++c) {
      float* pixels = image + ((first + b) * g.channels + c) * plane;
      float* ph_plane = phases + (b * g.channels + c) * plane_phases;
      for (std::size_t ih = 0; ih < h_end; ++ih) {
        if (relu_rows)
          conv_detail::row_from_phases<true>(phase_row(ph_plane, ih), w_end, g.pad_w, g.stride_w, ph.size(),
                                             pixels + ih * g.width);
        else
          conv_detail::row_from_phases(phase_row(ph_plane, ih), w_end, g.pad_w, g.stride_w, ph.size(),
                                       pixels + ih * g.width);
      }
      if (relu && !relu_rows)
        for (std::size_t i = 0; i < plane; ++i) pixels[i] = std::max(pixels[i], 0.0F);
    }
}

}  // namespace

void gather_channel_major(const float* src, const float* relu_out, std::size_t channels, std::size_t positions,
                          std::size_t first, std::size_t count, float* dst) {
  gather_channel_major(src, relu_out, channels, 0, channels, positions, first, count, dst);
}

void gather_channel_major(const float* src, const float* relu_out, std::size_t channels, std::size_t c0,
                          std::size_t c1, std::size_t positions, std::size_t first, std::size_t count, float* dst) {
  for (std::size_t b = 0; b < count; ++b)
    for (std::size_t c = c0; c < c1; ++c) {
      const std::size_t from = ((first + b) * channels + c) * positions;
      float* to = dst + ((c - c0) * count + b) * positions;
      if (relu_out)
        relu_grad(src + from, relu_out + from, positions, 0, 1, to);
      else
        std::memcpy(to, src + from, positions * sizeof(float));
    }
}

void scatter_channel_major(const float* src, std::size_t channels, std::size_t positions, std::size_t first,
                           std::size_t count, const float* bias, bool accumulate, bool relu, float* dst) {
  for (std::size_t b = 0; b < count; ++b)
    for (std::size_t c = 0; c < channels; ++c) {
      const float* in = src + (c * count + b) * positions;
      float* out = dst + ((first + b) * channels + c) * positions;
      const float add = bias ? bias[c] : 0.0F;
      // whole vectors, then the tail by value (the compiler's own vectorization of these loops
      // left them at about 1 ns a value for the VAE's 49 positions)
      const Vec vadd(add);
      const std::size_t whole = positions / kW * kW;
      std::size_t p = 0;
      if (accumulate) {
        for (; p < whole; p += kW)
          (Vec::load_unaligned(out + p) + (Vec::load_unaligned(in + p) + vadd)).store_unaligned(out + p);
        for (; p < positions; ++p) out[p] += in[p] + add;
      } else if (relu) {  // as relu's forward: std::max(v, 0), that is v < 0 ? 0 : v
        for (; p < whole; p += kW) {
          const Vec v = Vec::load_unaligned(in + p) + vadd;
          xsimd::select(v < Vec(0.0F), Vec(0.0F), v).store_unaligned(out + p);
        }
        for (; p < positions; ++p) out[p] = std::max(in[p] + add, 0.0F);
      } else {
        for (; p < whole; p += kW) (Vec::load_unaligned(in + p) + vadd).store_unaligned(out + p);
        for (; p < positions; ++p) out[p] = in[p] + add;
      }
    }
}

void relu_grad(const float* grad, const float* y, std::size_t n, std::size_t first, std::size_t count, float* dst) {
  const float* g = grad + first * n;
  const float* out = y + first * n;
  const std::size_t total = count * n, whole = total / kW * kW;
  std::size_t i = 0;
  for (; i < whole; i += kW)
    xsimd::select(Vec::load_unaligned(out + i) <= Vec(0.0F), Vec(0.0F), Vec(0.0F) + Vec::load_unaligned(g + i))
        .store_unaligned(dst + i);
  for (; i < total; ++i) dst[i] = out[i] <= 0.0F ? 0.0F : 0.0F + g[i];
}

}  // namespace ag
