// The batch-in-lanes convolution (conv_lanes.hpp): offset tables, the chunk passes and the
// forward and backward over a batch.
#include "autograd/kernels/conv_lanes.hpp"

#include <algorithm>
#include <atomic>
#include <stdexcept>

#include "autograd/kernels/parallel.hpp"

#if defined(__AVX512F__)
// GCC 12's own AVX-512 header trips its uninitialized-value warnings inside the shuffle and
// mask intrinsics (a known false positive, fixed in GCC 13), as in vector_math.cpp.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>
#include <immintrin.h>

#include "autograd/kernels/conv_lanes_kernels.hpp"
#include "autograd/kernels/conv_lanes_shuffle.hpp"
#endif

namespace ag {

namespace {
std::atomic<bool> lanes_enabled{true};
}  // namespace

void set_conv_lanes_enabled(bool enabled) { lanes_enabled.store(enabled); }
bool conv_lanes_enabled() { return lanes_enabled.load(); }

#if defined(__AVX512F__)

namespace conv_lanes_detail {
namespace {

constexpr std::size_t kLanes = 16;     // images a chunk (one per lane)
constexpr std::size_t kTaps = 16;      // 4 x 4
constexpr std::size_t kSumParts = 4;   // parts of the batch the weight and bias gradients are summed by
constexpr std::size_t kDownKc = 512;   // K block of down (taps of the 16 C)
constexpr std::size_t kUpKc = 256;     // K block of up (of the 4 O: channels x 4 taps of a phase)

constexpr std::size_t round16(std::size_t n) { return (n + 15) / 16 * 16; }

/// The sizes of both sides, padded and not.
struct Sizes {
  std::size_t big_c, small_c, big_h, big_w, small_h, small_w;
  explicit Sizes(const LanesConvShape& s)
      : big_c(s.big_c), small_c(s.small_c), big_h(s.big_h), big_w(s.big_w), small_h(s.big_h / 2), small_w(s.big_w / 2) {}
  std::size_t big_wp() const { return big_w + 2; }
  std::size_t small_wp() const { return small_w + 2; }
  std::size_t big_pad_plane() const { return (big_h + 2) * big_wp(); }
  std::size_t small_pad_plane() const { return (small_h + 2) * small_wp(); }
  std::size_t positions() const { return small_h * small_w; }  // of the small side, = a phase's pixels
  std::size_t k() const { return big_c * kTaps; }               // down's K, the weight's columns
  std::size_t up_k() const { return small_c * 4; }               // up's K per phase
  std::size_t weight_floats() const { return small_c * k(); }
  std::size_t big_image() const { return big_c * big_h * big_w; }
  std::size_t small_image() const { return small_c * positions(); }
  std::size_t max_channels() const { return std::max(big_c, small_c); }
  std::size_t big_pad_floats() const { return big_c * big_pad_plane() * kLanes; }
  std::size_t small_pad_floats() const { return small_c * small_pad_plane() * kLanes; }
  std::size_t small_floats() const { return small_image() * kLanes; }
  std::size_t slot_floats() const { return big_pad_floats() + small_pad_floats() + small_floats(); }
  // the packed weight, the expanded bias, the parts' dW and db sums
  std::size_t fixed_floats() const {
    return weight_floats() + round16(std::max(big_image(), small_image())) + kSumParts * weight_floats() +
           kSumParts * max_channels() * kLanes;
  }
};

/// Offsets (in floats) into a chunk's planes, which depend on the sizes only: kept for the
/// process, one set per sizes met (built on the first call, so later steps allocate nothing).
struct Tables {
  std::vector<std::int32_t> down_off;   // [16 C] tap (c, kh, kw) -> offset in big_pad from a window's corner
  std::vector<std::int32_t> down_base;  // [positions] output position -> its window's corner in big_pad
  std::vector<std::int32_t> up_off;     // [4 O] (o, dh, dw) -> offset in small_pad from a pixel's base
  std::array<std::vector<std::int32_t>, 4> up_base, up_dst;  // per phase: pixels' base in small_pad, place in big_pad
  std::vector<std::int32_t> big_pad_off, small_pad_off;      // NCHW index in an image -> its vector in the planes
};

std::int32_t to_offset(std::size_t floats) { return static_cast<std::int32_t>(floats); }

std::unique_ptr<Tables> make_tables(const Sizes& z) {
  auto t = std::make_unique<Tables>();
  const std::size_t bwp = z.big_wp(), swp = z.small_wp(), bpp = z.big_pad_plane(), spp = z.small_pad_plane();
  for (std::size_t c = 0; c < z.big_c; ++c)
    for (std::size_t kh = 0; kh < 4; ++kh)
      for (std::size_t kw = 0; kw < 4; ++kw) t->down_off.push_back(to_offset((c * bpp + kh * bwp + kw) * kLanes));
  for (std::size_t oh = 0; oh < z.small_h; ++oh)
    for (std::size_t ow = 0; ow < z.small_w; ++ow) t->down_base.push_back(to_offset((2 * oh * bwp + 2 * ow) * kLanes));
  // up: big pixel x (unpadded) takes taps k = k0 + 2 d of the small positions q = (x + 1 - k0) / 2 - d,
  // k0 = (x + 1) mod 2: its phase; base = q's padded place at d = 0, each tap d one row or column back.
  for (std::size_t o = 0; o < z.small_c; ++o)
    for (std::size_t dh = 0; dh < 2; ++dh)
      for (std::size_t dw = 0; dw < 2; ++dw)
        t->up_off.push_back(to_offset((o * spp) * kLanes) - to_offset((dh * swp + dw) * kLanes));
  for (std::size_t kh0 = 0; kh0 < 2; ++kh0)
    for (std::size_t kw0 = 0; kw0 < 2; ++kw0) {
      const std::size_t ph = kh0 * 2 + kw0;
      for (std::size_t xh = 0; xh < z.big_h; ++xh)
        for (std::size_t xw = 0; xw < z.big_w; ++xw) {
          if ((xh + 1) % 2 != kh0 || (xw + 1) % 2 != kw0) continue;
          const std::size_t gh = (xh + 1 - kh0) / 2 + 1, gw = (xw + 1 - kw0) / 2 + 1;
          t->up_base[ph].push_back(to_offset((gh * swp + gw) * kLanes));
          t->up_dst[ph].push_back(to_offset(((xh + 1) * bwp + xw + 1) * kLanes));
        }
    }
  for (std::size_t c = 0; c < z.big_c; ++c)
    for (std::size_t h = 0; h < z.big_h; ++h)
      for (std::size_t x = 0; x < z.big_w; ++x) t->big_pad_off.push_back(to_offset((c * bpp + (h + 1) * bwp + x + 1) * kLanes));
  for (std::size_t o = 0; o < z.small_c; ++o)
    for (std::size_t h = 0; h < z.small_h; ++h)
      for (std::size_t x = 0; x < z.small_w; ++x)
        t->small_pad_off.push_back(to_offset((o * spp + (h + 1) * swp + x + 1) * kLanes));
  return t;
}

const Tables& tables(const Sizes& z) {
  struct Entry {
    std::array<std::size_t, 4> key;
    std::unique_ptr<Tables> tables;
  };
  static std::mutex mutex;
  static std::vector<Entry> cache;
  const std::array<std::size_t, 4> key{z.big_c, z.small_c, z.big_h, z.big_w};
  const std::lock_guard lock(mutex);
  for (const Entry& e : cache)
    if (e.key == key) return *e.tables;
  cache.push_back({key, make_tables(z)});
  return *cache.back().tables;
}

/// down's A: W [O, 16 C] as O/8 row panels [16 C][8].
void pack_down(const Sizes& z, const float* w, float* a) {
  const std::size_t k = z.k();
  for (std::size_t o = 0; o < z.small_c; ++o)
    for (std::size_t t = 0; t < k; ++t) a[(o / kRows) * k * kRows + t * kRows + o % kRows] = w[o * k + t];
}

/// up's A, per phase (kh0, kw0): the taps (kh0 + 2 dh, kw0 + 2 dw) of W as C/8 row panels [4 O][8],
/// K ordered (o, dh, dw) as up_off.
void pack_up(const Sizes& z, const float* w, float* a) {
  const std::size_t k = z.k(), up_k = z.up_k();
  for (std::size_t ph = 0; ph < 4; ++ph, a += z.big_c * up_k) {
    const std::size_t kh0 = ph / 2, kw0 = ph % 2;
    for (std::size_t c = 0; c < z.big_c; ++c)
      for (std::size_t o = 0; o < z.small_c; ++o)
        for (std::size_t dh = 0; dh < 2; ++dh)
          for (std::size_t dw = 0; dw < 2; ++dw)
            a[(c / kRows) * up_k * kRows + (o * 4 + dh * 2 + dw) * kRows + c % kRows] =
                w[o * k + c * kTaps + (kh0 + 2 * dh) * 4 + kw0 + 2 * dw];
  }
}

/// Where the scratch's parts lie: the packed weight, the bias expanded to one value per output
/// float of an image, each part's dW [O, 16 C] and db lanes [channels][16], then a set of chunk
/// planes per slot (big_pad, small_pad, and small [O, positions, 16] without a border).
struct Layout {
  Sizes z;
  float* scratch;
  float* packed_w() const { return scratch; }
  float* bias() const { return scratch + z.weight_floats(); }
  float* part_dw(std::size_t part) const {
    return bias() + round16(std::max(z.big_image(), z.small_image())) + part * z.weight_floats();
  }
  float* part_db(std::size_t part) const { return part_dw(kSumParts) + part * z.max_channels() * kLanes; }
  float* big_pad(std::size_t slot) const { return scratch + z.fixed_floats() + slot * z.slot_floats(); }
  float* small_pad(std::size_t slot) const { return big_pad(slot) + z.big_pad_floats(); }
  float* small(std::size_t slot) const { return small_pad(slot) + z.small_pad_floats(); }
};

/// Zeroes the one-pixel border of `channels` planes of hp x wp vectors (the interiors are
/// rewritten for each chunk; the borders, never written, must read zero).
void zero_borders(float* pad, std::size_t channels, std::size_t hp, std::size_t wp) {
  const __m512 zero = _mm512_setzero_ps();
  for (std::size_t c = 0; c < channels; ++c, pad += hp * wp * kLanes) {
    for (std::size_t x = 0; x < wp; ++x) {
      _mm512_store_ps(pad + x * kLanes, zero);
      _mm512_store_ps(pad + ((hp - 1) * wp + x) * kLanes, zero);
    }
    for (std::size_t h = 1; h + 1 < hp; ++h) {
      _mm512_store_ps(pad + h * wp * kLanes, zero);
      _mm512_store_ps(pad + (h * wp + wp - 1) * kLanes, zero);
    }
  }
}

__mmask16 first_lanes(std::size_t n) { return static_cast<__mmask16>(n >= kLanes ? 0xFFFFU : (1U << n) - 1U); }

// dst + off[q] = the values q (q < per_image) of the `count` images src [count, per_image], the
// other lanes zero; with relu_out, y <= 0 ? 0 : 0 + src (the ReLU's backward, given its output);
// with db_lanes, each channel's vectors (per_channel of them) also summed in order in a register
// and the sum added to db_lanes[channel] (a load, add and store a vector there would chain each
// add on the last one's store).
void to_lanes(const float* src, std::size_t per_image, std::size_t count, const std::int32_t* off, float* dst,
              const float* relu_out, float* db_lanes, std::size_t per_channel) {
  const __m512 zero = _mm512_setzero_ps();
  __m512 channel_sum = zero;
  std::size_t channel = 0, channel_end = per_channel;
  for (std::size_t q0 = 0; q0 < per_image; q0 += kLanes) {
    const std::size_t n = std::min(kLanes, per_image - q0);
    const __mmask16 m = first_lanes(n);
    __m512 r[kLanes];
    for (std::size_t i = 0; i < kLanes; ++i) r[i] = i < count ? _mm512_maskz_loadu_ps(m, src + i * per_image + q0) : zero;
    if (relu_out)
      for (std::size_t i = 0; i < count; ++i) {
        const __mmask16 keep =
            _mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(m, relu_out + i * per_image + q0), zero, _CMP_NLE_UQ);
        r[i] = _mm512_add_ps(zero, _mm512_maskz_mov_ps(keep, r[i]));
      }
    transpose16(r);
    for (std::size_t k = 0; k < n; ++k) _mm512_store_ps(dst + off[q0 + k], r[k]);
    if (db_lanes)
      for (std::size_t k = 0; k < n; ++k) {
        if (q0 + k == channel_end) {
          float* d = db_lanes + channel * kLanes;
          _mm512_store_ps(d, _mm512_add_ps(_mm512_load_ps(d), channel_sum));
          channel_sum = zero;
          ++channel;
          channel_end += per_channel;
        }
        channel_sum = _mm512_add_ps(channel_sum, r[k]);
      }
  }
  if (db_lanes) {
    float* d = db_lanes + channel * kLanes;
    _mm512_store_ps(d, _mm512_add_ps(_mm512_load_ps(d), channel_sum));
  }
}

// The `count` images dst [count, per_image] = the lanes of value q at src + off[q] (off null:
// src [per_image][16]), plus bias[q] when bias is not null, then max(that, 0) with relu; with
// add, added to dst's values instead.
void from_lanes(const float* src, const std::int32_t* off, std::size_t per_image, std::size_t count, float* dst,
                const float* bias, bool relu, bool add) {
  const __m512 zero = _mm512_setzero_ps();
  for (std::size_t q0 = 0; q0 < per_image; q0 += kLanes) {
    const std::size_t n = std::min(kLanes, per_image - q0);
    const __mmask16 m = first_lanes(n);
    __m512 r[kLanes];
    for (std::size_t k = 0; k < kLanes; ++k)
      r[k] = k < n ? _mm512_load_ps(src + (off ? static_cast<std::size_t>(off[q0 + k]) : (q0 + k) * kLanes)) : zero;
    transpose16(r);
    const __m512 b = bias ? _mm512_maskz_loadu_ps(m, bias + q0) : zero;
    for (std::size_t i = 0; i < count; ++i) {
      float* d = dst + i * per_image + q0;
      __m512 v = bias ? _mm512_add_ps(r[i], b) : r[i];
      if (relu) v = _mm512_max_ps(zero, v);  // 0 > v ? 0 : v: relu's bits (NaN and -0 pass through)
      if (add) v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, d), v);
      _mm512_mask_storeu_ps(d, m, v);
    }
  }
}

// A tile of indirect_kernel over nv <= 3 positions.
void indirect(std::size_t nv, std::size_t kc, const float* a, const std::int32_t* off, const float* const* b,
              float* const* c, std::size_t ldc, bool accumulate) {
  if (nv == 3)
    indirect_kernel<3>(kc, a, off, b, c, ldc, accumulate);
  else if (nv == 2)
    indirect_kernel<2>(kc, a, off, b, c, ldc, accumulate);
  else
    indirect_kernel<1>(kc, a, off, b, c, ldc, accumulate);
}

// small [O, positions, 16] = the conv2d of big_pad (its products, no bias); a: pack_down's.
void down(const Sizes& z, const Tables& t, const float* a_panels, const float* big_pad, float* small) {
  const std::size_t positions = z.positions(), k = z.k(), ldc = positions * kLanes;
  for (std::size_t pos0 = 0; pos0 < positions; pos0 += 3) {
    const std::size_t nv = std::min<std::size_t>(3, positions - pos0);
    const float* b[3];
    for (std::size_t j = 0; j < 3; ++j) b[j] = big_pad + t.down_base[std::min(pos0 + j, positions - 1)];
    for (std::size_t kb = 0; kb < k; kb += kDownKc)
      for (std::size_t r = 0; r < z.small_c / kRows; ++r) {
        float* c0 = small + r * kRows * ldc + pos0 * kLanes;
        float* c[3] = {c0, c0 + kLanes, c0 + 2 * kLanes};
        indirect(nv, std::min(kDownKc, k - kb), a_panels + (r * k + kb) * kRows, t.down_off.data() + kb, b, c, ldc,
                 kb > 0);
      }
  }
}

// The interior of big_pad = the adjoint of down applied to small_pad, phase by phase (the
// border is not written); a: pack_up's.
void up(const Sizes& z, const Tables& t, const float* a_panels, const float* small_pad, float* big_pad) {
  const std::size_t up_k = z.up_k(), ldc = z.big_pad_plane() * kLanes, pixels = z.positions();
  for (std::size_t ph = 0; ph < 4; ++ph) {
    const float* a_phase = a_panels + ph * z.big_c * up_k;
    for (std::size_t p0 = 0; p0 < pixels; p0 += 3) {
      const std::size_t nv = std::min<std::size_t>(3, pixels - p0);
      const float* b[3];
      std::size_t d[3];
      for (std::size_t j = 0; j < 3; ++j) {
        const std::size_t p = std::min(p0 + j, pixels - 1);
        b[j] = small_pad + t.up_base[ph][p];
        d[j] = static_cast<std::size_t>(t.up_dst[ph][p]);
      }
      for (std::size_t kb = 0; kb < up_k; kb += kUpKc)
        for (std::size_t r = 0; r < z.big_c / kRows; ++r) {
          float* rows = big_pad + r * kRows * ldc;
          float* c[3] = {rows + d[0], rows + d[1], rows + d[2]};
          indirect(nv, std::min(kUpKc, up_k - kb), a_phase + (r * up_k + kb) * kRows, t.up_off.data() + kb, b, c, ldc,
                   kb > 0);
        }
    }
  }
}

// dw [O, 16 C] += the weight gradient of one chunk: small_pad the small side, big_pad the big.
// Tiles of 6 output channels (then 4: O, a multiple of 8, is 6 a + 4 b), whose gradient planes
// stay in L1 while the tile walks the taps.
void weight_grad(const Sizes& z, const float* small_pad, const float* big_pad, float* dw) {
  const std::size_t sixes = z.small_c % 6 == 2 ? (z.small_c - 8) / 6 : z.small_c / 6;
  const std::size_t g_row = z.small_pad_plane() * kLanes, k = z.k();
  for (std::size_t o = 0; o < z.small_c; o += o < 6 * sixes ? 6 : 4)
    for (std::size_t c = 0; c < z.big_c; ++c)
      for (std::size_t kh = 0; kh < 4; ++kh) {
        const float* g = small_pad + o * g_row;
        const float* x = big_pad + (c * z.big_pad_plane() + kh * z.big_wp()) * kLanes;
        float* d = dw + o * k + c * kTaps + kh * 4;
        if (o < 6 * sixes)
          dw_kernel<6>(g, g_row, z.small_wp(), x, z.big_wp(), z.small_h, z.small_w, d, k);
        else
          dw_kernel<4>(g, g_row, z.small_wp(), x, z.big_wp(), z.small_h, z.small_w, d, k);
      }
}

// The batch's chunks (the last one possibly short) cut into parts (at most kSumParts, a run of
// neighbouring chunks each, the cut fixed by the batch size), each of `slots` threads zeroing
// its planes' borders, then running a run of neighbouring parts in its own slot:
// chunk(slot, part, first image, images). (Runs, not parts dealt in turn: 6 chunks make parts
// of 1, 2, 1 and 2 chunks, which dealt in turn would give one of 2 threads twice the other's.)
std::size_t chunks_of(std::size_t batch) { return (batch + kLanes - 1) / kLanes; }
/// The parts a batch's weight and bias gradients are summed in (fixed by the batch size).
std::size_t parts_of(std::size_t batch) { return std::min(chunks_of(batch), kSumParts); }

template <class Chunk>
void run_parts(const Layout& l, std::size_t batch, std::size_t slots, const Chunk& chunk) {
  const std::size_t chunks = chunks_of(batch), parts = parts_of(batch);
  parallel_run(static_cast<int>(slots), [&](int thread) {
    const auto s = static_cast<std::size_t>(thread);
    zero_borders(l.big_pad(s), l.z.big_c, l.z.big_h + 2, l.z.big_wp());
    zero_borders(l.small_pad(s), l.z.small_c, l.z.small_h + 2, l.z.small_wp());
    for (std::size_t p = parts * s / slots; p < parts * (s + 1) / slots; ++p)
      for (std::size_t k = chunks * p / parts; k < chunks * (p + 1) / parts; ++k)
        chunk(s, p, k * kLanes, std::min(kLanes, batch - k * kLanes));
  });
}

/// A side of the convolution: its images' floats, a channel's positions, its channels, and
/// where each of an image's floats goes in the side's zero-bordered planes.
struct Side {
  std::size_t per_image, per_channel, channels;
  const std::int32_t* pad_off;
  bool big;
  float* pad(const Layout& l, std::size_t slot) const { return big ? l.big_pad(slot) : l.small_pad(slot); }
};

Side side(const Sizes& z, const Tables& t, bool big) {
  return big ? Side{z.big_image(), z.big_h * z.big_w, z.big_c, t.big_pad_off.data(), true}
             : Side{z.small_image(), z.positions(), z.small_c, t.small_pad_off.data(), false};
}

// The product from one side's planes to the other side (down from the big side, up from the
// small one) with the packed weight for it; returns where its lanes are and each value's
// offset there (null for small's [per_image][16]).
std::pair<const float*, const std::int32_t*> product(const Layout& l, const Tables& t, std::size_t slot, bool from_big) {
  if (from_big) {
    down(l.z, t, l.packed_w(), l.big_pad(slot), l.small(slot));
    return {l.small(slot), nullptr};
  }
  up(l.z, t, l.packed_w(), l.small_pad(slot), l.big_pad(slot));  // the interior: after weight_grad() is done with it
  return {l.big_pad(slot), t.big_pad_off.data()};
}

}  // namespace
}  // namespace conv_lanes_detail

using namespace conv_lanes_detail;

bool conv_lanes_fits(std::size_t big_c, std::size_t small_c, std::size_t big_h, std::size_t big_w) {
  if (big_c == 0 || small_c == 0 || big_c % kRows != 0 || small_c % kRows != 0 || big_h == 0 || big_w == 0 ||
      big_h % 2 != 0 || big_w % 2 != 0)
    return false;
  // A chunk's planes of either side at most 2^22 floats (16 MB: the VAE's 14 x 14 x 32 take 2^17;
  // much beyond L2 the layout loses its point, and 16 images of large pictures would take far
  // more memory than the general path's chunks), which also keeps the tables' 32-bit offsets
  // in range; the weight below 2^31 floats.
  constexpr double kMax = 4194304.0;
  const double big = static_cast<double>(big_c) * static_cast<double>(big_h + 2) * static_cast<double>(big_w + 2);
  const double small = static_cast<double>(small_c) * static_cast<double>(big_h / 2 + 2) *
                       static_cast<double>(big_w / 2 + 2);
  return big * kLanes <= kMax && small * kLanes <= kMax &&
         static_cast<double>(big_c) * static_cast<double>(small_c) * kTaps < 2147483647.0;
}

std::size_t conv_lanes_slots(std::size_t batch) {
  const std::size_t parts = parts_of(batch);
  return std::clamp<std::size_t>(static_cast<std::size_t>(std::max(num_threads(), 1)), 1, std::max<std::size_t>(parts, 1));
}

std::size_t conv_lanes_scratch_floats(const LanesConvShape& shape, std::size_t slots) {
  const Sizes z(shape);
  return z.fixed_floats() + slots * z.slot_floats();
}

std::size_t conv_lanes_slots_in(const LanesConvShape& shape, std::size_t floats) {
  const Sizes z(shape);
  if (floats < z.fixed_floats() + z.slot_floats() || (floats - z.fixed_floats()) % z.slot_floats() != 0)
    throw std::logic_error("conv lanes: the node's scratch does not hold its forward's buffers");
  return (floats - z.fixed_floats()) / z.slot_floats();
}

void conv_lanes_forward(const LanesConvShape& shape, bool input_big, const float* x, const float* weight,
                        const float* bias, bool relu, float* y, float* scratch, std::size_t slots) {
  if (shape.batch == 0) return;
  const Layout l{Sizes(shape), scratch};
  const Tables& t = tables(l.z);
  const Side in = side(l.z, t, input_big), out = side(l.z, t, !input_big);
  if (input_big)
    pack_down(l.z, weight, l.packed_w());
  else
    pack_up(l.z, weight, l.packed_w());
  if (bias)
    for (std::size_t c = 0; c < out.channels; ++c) std::fill_n(l.bias() + c * out.per_channel, out.per_channel, bias[c]);
  run_parts(l, shape.batch, slots, [&](std::size_t s, std::size_t, std::size_t first, std::size_t count) {
    to_lanes(x + first * in.per_image, in.per_image, count, in.pad_off, in.pad(l, s), nullptr, nullptr, 1);
    const auto lanes = product(l, t, s, input_big);
    from_lanes(lanes.first, lanes.second, out.per_image, count, y + first * out.per_image, bias ? l.bias() : nullptr,
               relu, false);
  });
}

void conv_lanes_backward(const LanesConvShape& shape, bool input_big, const float* x, const float* weight,
                         const float* relu_out, const float* dy, const LanesConvGrads& grads, float* scratch,
                         std::size_t slots) {
  const Layout l{Sizes(shape), scratch};
  const Tables& t = tables(l.z);
  const Side in = side(l.z, t, input_big), out = side(l.z, t, !input_big);
  const std::size_t parts = parts_of(shape.batch);
  if (grads.dx) {  // dx = up(g) for conv2d, down(g) for conv_transpose2d
    if (input_big)
      pack_up(l.z, weight, l.packed_w());
    else
      pack_down(l.z, weight, l.packed_w());
  }
  if (grads.dw) std::fill_n(l.part_dw(0), parts * l.z.weight_floats(), 0.0F);
  if (grads.db) std::fill_n(l.part_db(0), parts * l.z.max_channels() * kLanes, 0.0F);
  run_parts(l, shape.batch, slots, [&](std::size_t s, std::size_t part, std::size_t first, std::size_t count) {
    to_lanes(dy + first * out.per_image, out.per_image, count, out.pad_off, out.pad(l, s),
             relu_out ? relu_out + first * out.per_image : nullptr, grads.db ? l.part_db(part) : nullptr,
             out.per_channel);
    if (grads.dw) {
      to_lanes(x + first * in.per_image, in.per_image, count, in.pad_off, in.pad(l, s), nullptr, nullptr, 1);
      weight_grad(l.z, l.small_pad(s), l.big_pad(s), l.part_dw(part));
    }
    if (grads.dx) {
      const auto lanes = product(l, t, s, !input_big);
      from_lanes(lanes.first, lanes.second, in.per_image, count, grads.dx + first * in.per_image, nullptr, false,
                 grads.dx_add);
    }
  });
  if (grads.dw) {  // the parts' sums in part order
    const std::size_t n = l.z.weight_floats();
    if (!grads.dw_add) std::fill_n(grads.dw, n, 0.0F);
    for (std::size_t p = 0; p < parts; ++p) {
      const float* sum = l.part_dw(p);
      for (std::size_t i = 0; i < n; ++i) grads.dw[i] += sum[i];
    }
  }
  if (grads.db)  // per channel: the parts in order, each part's lanes in order
    for (std::size_t c = 0; c < out.channels; ++c) {
      float sum = 0.0F;
      for (std::size_t p = 0; p < parts; ++p)
        for (std::size_t lane = 0; lane < kLanes; ++lane) sum += l.part_db(p)[c * kLanes + lane];
      grads.db[c] = (grads.db_add ? grads.db[c] : 0.0F) + sum;
    }
}

#else  // no AVX-512: the kernels are not built, and conv_lanes_fits says so

bool conv_lanes_fits(std::size_t, std::size_t, std::size_t, std::size_t) { return false; }
std::size_t conv_lanes_slots(std::size_t) { return 1; }
std::size_t conv_lanes_scratch_floats(const LanesConvShape&, std::size_t) { return 0; }
std::size_t conv_lanes_slots_in(const LanesConvShape&, std::size_t) { return 0; }
void conv_lanes_forward(const LanesConvShape&, bool, const float*, const float*, const float*, bool, float*, float*,
                        std::size_t) {
  throw std::logic_error("conv lanes: not built (no AVX-512)");
}
void conv_lanes_backward(const LanesConvShape&, bool, const float*, const float*, const float*, const float*,
                         const LanesConvGrads&, float*, std::size_t) {
  throw std::logic_error("conv lanes: not built (no AVX-512)");
}

#endif

}  // namespace ag
