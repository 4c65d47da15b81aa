#include "autograd/kernels/conv_by_phases.hpp"

#include <algorithm>
#include <cstdint>

#include <xsimd/xsimd.hpp>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "autograd/kernels/conv_panels.hpp"
#include "autograd/kernels/conv_phases.hpp"
#include "autograd/kernels/gemm_kernel.hpp"
#include "autograd/kernels/gemm_packed.hpp"
#include "autograd/kernels/gemm_panels.hpp"

namespace ag::conv_by_phases {
namespace {

using Vec = xsimd::batch<float>;
constexpr std::size_t kW = Vec::size;
constexpr std::size_t kMaxTaps = 64;  // of one phase

std::ptrdiff_t sgn(std::size_t v) { return static_cast<std::ptrdiff_t>(v); }

// One axis (height or width) of the phases: phase p's pixels t s + p, t < phases_out, take taps
// i = first(p) + s u, u < taps(p), from X' at t + e(p) - u.
struct Axis {
  std::size_t stride, kernel, pad, in, out;  // in: X' along the axis; out: the image

  std::size_t first(std::size_t p) const { return (p + pad) % stride; }
  std::size_t taps(std::size_t p) const { return (kernel - first(p) + stride - 1) / stride; }
  std::ptrdiff_t e(std::size_t p) const { return sgn((p + pad - first(p)) / stride); }
  std::size_t phase_out() const { return out / stride; }
  // the offsets e(p) - u over all phases: [lo, hi]
  std::ptrdiff_t lo() const {
    std::ptrdiff_t v = e(0) - sgn(taps(0)) + 1;
    for (std::size_t p = 1; p < stride; ++p) v = std::min(v, e(p) - sgn(taps(p)) + 1);
    return v;
  }
  std::ptrdiff_t hi() const {
    std::ptrdiff_t v = e(0);
    for (std::size_t p = 1; p < stride; ++p) v = std::max(v, e(p));
    return v;
  }
  // reach: the planes' extent along the axis (rows: t + offset - lo; shifts: offset - lo)
  std::size_t reach() const { return static_cast<std::size_t>(hi() - lo()) + 1; }
};

// The geometry of the phases and of X's planes: per channel `shifts` planes (one per
// horizontal offset o = lo_x + s) of rows x cols floats,
//   planes[s][y][x] = X'[y + lo_y][x + o]   (0 outside X'),
// so tap (u, v) of phase (py, px) at position (t, x) reads planes[ex - v - lo_x][t + ey - u - lo_y][x].
struct Phases {
  Axis ay, ax;
  std::size_t rows, cols, shifts, channels;  // channels: C, the output's

  explicit Phases(const ConvGeometry& g)
      : ay{g.stride_h, g.kernel_h, g.pad_h, g.out_h, g.height},
        ax{g.stride_w, g.kernel_w, g.pad_w, g.out_w, g.width},
        rows(ay.phase_out() + ay.reach() - 1),
        cols(ax.phase_out()),
        shifts(ax.reach()),
        channels(g.channels) {}

  std::size_t count() const { return ay.stride * ax.stride; }
  std::size_t taps(std::size_t py, std::size_t px) const { return ay.taps(py) * ax.taps(px); }
  std::size_t plane() const { return shifts * rows * cols; }  // floats of one channel's planes
  std::size_t positions() const { return ay.phase_out() * cols; }
  std::size_t max_k(std::size_t m) const {
    std::size_t k = 0;
    for (std::size_t py = 0; py < ay.stride; ++py)
      for (std::size_t px = 0; px < ax.stride; ++px) k = std::max(k, m * taps(py, px));
    return k;
  }
};

// Where the parts of run's working memory sit: X's planes (a vector of slack each side), the
// phases' outputs [phase][C, n], a row of pixels, and op(B) as a matrix for the OpenBLAS build.
struct Work {
  std::size_t planes, outputs, row, plain;
  Work(const Phases& ph, std::size_t m, std::size_t count, std::size_t width)
      : planes(count * m * ph.plane() + 3 * kW),
        outputs(ph.count() * ph.channels * count * ph.positions()),
        row(width + kW),
        plain(ph.max_k(m) * count * ph.positions()) {}
  std::size_t floats() const { return planes + outputs + row + plain; }
};

// dst[x] = src[x + o] for x < n where 0 <= x + o < len, else 0 (a row of one shifted plane).
void shifted_row(const float* src, std::ptrdiff_t o, std::size_t len, std::size_t n, float* dst) {
  const std::ptrdiff_t begin = std::clamp<std::ptrdiff_t>(-o, 0, sgn(n));
  const std::ptrdiff_t end = std::clamp<std::ptrdiff_t>(sgn(len) - o, begin, sgn(n));
#if defined(__AVX512F__)
  if (n <= 16) {  // one masked load and store (lanes outside [begin, end) read nothing)
    const auto lanes = [](std::ptrdiff_t k) { return static_cast<__mmask16>((1U << k) - 1U); };
    const __mmask16 live = static_cast<__mmask16>(lanes(end) & ~lanes(begin));
    const float* from = reinterpret_cast<const float*>(reinterpret_cast<std::intptr_t>(src) +
                                                        o * static_cast<std::ptrdiff_t>(sizeof(float)));
    _mm512_mask_storeu_ps(dst, lanes(sgn(n)), _mm512_maskz_loadu_ps(live, from));
    return;
  }
#endif
  for (std::ptrdiff_t x = 0; x < sgn(n); ++x) dst[x] = x >= begin && x < end ? src[x + o] : 0.0F;
}

}  // namespace

bool applies(const ConvGeometry& g, std::size_t m) {
  if (g.dilation_h != 1 || g.dilation_w != 1 || g.stride_h * g.stride_w < 2) return false;
  if (g.height % g.stride_h != 0 || g.width % g.stride_w != 0 || g.height == 0 || g.width == 0) return false;
  if (g.kernel_h < g.stride_h || g.kernel_w < g.stride_w || g.channels < gemm_detail::kMR) return false;
  const Phases ph(g);
  for (std::size_t py = 0; py < ph.ay.stride; ++py)
    for (std::size_t px = 0; px < ph.ax.stride; ++px)
      if (ph.taps(py, px) > kMaxTaps) return false;
  return m * ph.plane() < (std::size_t{1} << 24);  // the gathers' offsets are 32-bit, over the chunk
}

std::size_t weight_floats(const ConvGeometry& g, std::size_t m) {
  const Phases ph(g);
  std::size_t floats = ph.channels * ph.max_k(m);  // one phase's W_phase before packing
  for (std::size_t py = 0; py < ph.ay.stride; ++py)
    for (std::size_t px = 0; px < ph.ax.stride; ++px) floats += gemm_packed_a_floats(ph.channels, m * ph.taps(py, px));
  return floats;
}

std::size_t work_floats(const ConvGeometry& g, std::size_t m, std::size_t count) {
  return Work(Phases(g), m, count, g.width).floats();
}

void pack(const ConvGeometry& g, std::size_t m, const float* w, float* packed) {
  const Phases ph(g);
  const std::size_t C = ph.channels, taps = g.kernel_h * g.kernel_w;
  float* unpacked = packed;
  for (std::size_t py = 0; py < ph.ay.stride; ++py)
    for (std::size_t px = 0; px < ph.ax.stride; ++px) unpacked += gemm_packed_a_floats(C, m * ph.taps(py, px));
  for (std::size_t py = 0; py < ph.ay.stride; ++py)
    for (std::size_t px = 0; px < ph.ax.stride; ++px) {
      const std::size_t nu = ph.ay.taps(py), nv = ph.ax.taps(px), k = m * nu * nv;
      const std::size_t ry = ph.ay.first(py), rx = ph.ax.first(px);
      // W_phase[c, (ci, u, v)] = W[ci, (c, ry + s u, rx + s v)]
      for (std::size_t c = 0; c < C; ++c)
        for (std::size_t ci = 0; ci < m; ++ci)
          for (std::size_t u = 0; u < nu; ++u)
            for (std::size_t v = 0; v < nv; ++v)
              unpacked[c * k + (ci * nu + u) * nv + v] =
                  w[ci * C * taps + c * taps + (ry + g.stride_h * u) * g.kernel_w + rx + g.stride_w * v];
      gemm_pack_a(false, C, k, unpacked, k, packed);
      packed += gemm_packed_a_floats(C, k);
    }
}

void run(const ConvGeometry& g, std::size_t m, const float* packed, const float* src, std::size_t first,
         std::size_t count, const float* bias, bool accumulate, bool relu, float* image, float* work) {
  const Phases ph(g);
  const Work layout(ph, m, count, g.width);
  const std::size_t C = ph.channels, positions = ph.positions(), n = count * positions;
  const std::size_t in_plane = g.out_h * g.out_w, plane = ph.plane();
  const std::ptrdiff_t lo_y = ph.ay.lo(), lo_x = ph.ax.lo();
  float* planes = work + kW;
  float* outputs = work + layout.planes;
  float* row = outputs + layout.outputs;
  float* plain = row + layout.row;
  std::fill(work, planes, 0.0F);  // the slack the gathers' loads may read into
  // X's planes, each row from one row of X' (or zero)
  for (std::size_t b = 0; b < count; ++b)
    for (std::size_t ci = 0; ci < m; ++ci) {
      const float* x = src + (b * m + ci) * in_plane;
      float* dst = planes + (b * m + ci) * plane;
      for (std::size_t s = 0; s < ph.shifts; ++s)
        for (std::size_t y = 0; y < ph.rows; ++y, dst += ph.cols) {
          const std::ptrdiff_t xy = sgn(y) + lo_y;
          if (xy < 0 || xy >= sgn(g.out_h))
            std::fill(dst, dst + ph.cols, 0.0F);
          else
            shifted_row(x + xy * sgn(g.out_w), sgn(s) + lo_x, g.out_w, ph.cols, dst);
        }
    }
  std::fill(planes + count * m * plane, planes + count * m * plane + 2 * kW, 0.0F);
  // each phase's GEMM: Y_phase [C, n] = W_phase cols
  std::int32_t tap_offset[kMaxTaps];
  const float* packed_phase = packed;
  for (std::size_t py = 0; py < ph.ay.stride; ++py)
    for (std::size_t px = 0; px < ph.ax.stride; ++px) {
      const std::size_t nu = ph.ay.taps(py), nv = ph.ax.taps(px), k = m * nu * nv;
      for (std::size_t u = 0; u < nu; ++u)
        for (std::size_t v = 0; v < nv; ++v)
          tap_offset[u * nv + v] = static_cast<std::int32_t>(
              (ph.ax.e(px) - sgn(v) - lo_x) * sgn(ph.rows * ph.cols) + (ph.ay.e(py) - sgn(u) - lo_y) * sgn(ph.cols));
      const TapTableColumns cols{planes, tap_offset, nu * nv, plane, m * plane, positions};
      gemm_prepacked_a_panels_b(C, n, k, packed_phase, cols.source(), 0.0F,
                                outputs + (py * ph.ax.stride + px) * C * n, n, plain);
      packed_phase += gemm_packed_a_floats(C, k);
    }
  // the pixels: row Y of phase row py = Y % sh, its columns from the phases (py, X % sw)
  const std::size_t phase_floats = C * n;
  for (std::size_t b = 0; b < count; ++b)
    for (std::size_t c = 0; c < C; ++c) {
      float* pixels = image + ((first + b) * C + c) * g.height * g.width;
      const float bias_c = bias && !accumulate ? bias[c] : 0.0F;
      const Vec add(bias_c);
      for (std::size_t y = 0; y < g.height; ++y, pixels += g.width) {
        const float* in = outputs + (y % g.stride_h) * g.stride_w * phase_floats + c * n + b * positions +
                          y / g.stride_h * ph.cols;
        conv_detail::row_from_phases(in, g.width, 0, g.stride_w, phase_floats, row);
        std::size_t x = 0;
        for (; x + kW <= g.width; x += kW) {
          Vec v = Vec::load_unaligned(row + x);
          v = accumulate ? Vec::load_unaligned(pixels + x) + v : v + add;
          if (relu) v = xsimd::select(v < Vec(0.0F), Vec(0.0F), v);
          v.store_unaligned(pixels + x);
        }
        for (; x < g.width; ++x) {
          const float v = accumulate ? pixels[x] + row[x] : row[x] + bias_c;
          pixels[x] = relu ? std::max(v, 0.0F) : v;
        }
      }
    }
}

}  // namespace ag::conv_by_phases
