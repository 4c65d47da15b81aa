// The batch-in-lanes prototype of the 7 x 7 layers (lanes_layer.hpp): tables, the chunk passes
// and the layers' forward and backward over a batch.
#include "bench/conv_lanes/lanes_layer.hpp"

// GCC 12's own AVX-512 header trips its uninitialized-value warnings inside the shuffle and
// mask intrinsics (a known false positive, fixed in GCC 13), as in vector_math.cpp.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <cstdlib>
#include <cstring>
#include <utility>
#include <immintrin.h>
#include <x86intrin.h>

#include "autograd/kernels/gemm_kernel.hpp"
#include "autograd/kernels/parallel.hpp"
#include "bench/conv_lanes/lanes_kernels.hpp"
#include "bench/conv_lanes/lanes_shuffle.hpp"

namespace lanes {

namespace {

constexpr std::size_t kBigPadPlane = kBigPad * kBigPad, kSmallPadPlane = kSmallPad * kSmallPad;
constexpr std::size_t kK = kBigC * kTaps;  // 512: down's K, the weight's columns
constexpr std::size_t kUpK = kSmallC * 4;  // 256: up's K per phase
constexpr std::size_t kBigImage = kBigC * kBigPlane, kSmallImage = kSmallC * kSmallPlane;  // 6272, 3136

float* alloc_floats(std::size_t n) {
  const std::size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
  auto* p = static_cast<float*>(std::aligned_alloc(64, bytes));
  std::memset(p, 0, bytes);
  return p;
}

// Ticks of part `part` on this slot since `start`; returns now.
std::uint64_t tick(Buffers& s, Part part, std::uint64_t start) {
  const std::uint64_t now = __rdtsc();
  s.ticks[part] += now - start;
  return now;
}

// dst + off[q] = the 16 images' value q (q < per_image) of src [B, per_image] from image n0 on;
// with mask_y, zero where mask_y <= 0 (the ReLU's backward, given its output); with db_lanes,
// each channel's vectors (per_channel of them) also summed in order in a register and the sum
// added to db_lanes[channel] (a load, add and store a vector there would chain each add on the
// last one's store).
void to_lanes(const float* src, std::size_t per_image, std::size_t n0, const std::int32_t* off, float* dst,
              const float* mask_y = nullptr, float* db_lanes = nullptr, std::size_t per_channel = 1) {
  src += n0 * per_image;
  if (mask_y) mask_y += n0 * per_image;
  __m512 channel_sum = _mm512_setzero_ps();
  std::size_t channel = 0, channel_end = per_channel;
  for (std::size_t q0 = 0; q0 < per_image; q0 += kLanes) {
    __m512 r[kLanes];
    for (std::size_t i = 0; i < kLanes; ++i) r[i] = _mm512_loadu_ps(src + i * per_image + q0);
    if (mask_y)
      for (std::size_t i = 0; i < kLanes; ++i) {
        const __mmask16 live =
            _mm512_cmp_ps_mask(_mm512_loadu_ps(mask_y + i * per_image + q0), _mm512_setzero_ps(), _CMP_GT_OQ);
        r[i] = _mm512_maskz_mov_ps(live, r[i]);
      }
    transpose16(r);
    for (std::size_t k = 0; k < kLanes; ++k) _mm512_store_ps(dst + off[q0 + k], r[k]);
    if (db_lanes)
      for (std::size_t k = 0; k < kLanes; ++k) {
        if (q0 + k == channel_end) {
          float* d = db_lanes + channel * kLanes;
          _mm512_store_ps(d, _mm512_add_ps(_mm512_load_ps(d), channel_sum));
          channel_sum = _mm512_setzero_ps();
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

// Images n0 .. n0 + 15 of dst [B, per_image] = the lanes of value q at src + off[q] (off null:
// src [per_image][16]), plus bias[q] when bias is not null, then max(that, 0) with relu.
void from_lanes(const float* src, const std::int32_t* off, std::size_t per_image, std::size_t n0, float* dst,
                const float* bias, bool relu) {
  dst += n0 * per_image;
  for (std::size_t q0 = 0; q0 < per_image; q0 += kLanes) {
    __m512 r[kLanes];
    for (std::size_t k = 0; k < kLanes; ++k)
      r[k] = _mm512_load_ps(src + (off ? static_cast<std::size_t>(off[q0 + k]) : (q0 + k) * kLanes));
    transpose16(r);
    const __m512 b = bias ? _mm512_loadu_ps(bias + q0) : _mm512_setzero_ps();
    for (std::size_t i = 0; i < kLanes; ++i) {
      __m512 v = bias ? _mm512_add_ps(r[i], b) : r[i];
      if (relu) v = _mm512_max_ps(v, _mm512_setzero_ps());
      _mm512_storeu_ps(dst + i * per_image + q0, v);
    }
  }
}

// small [64, 49, 16] = the conv2d of big_pad (its forward products, no bias).
void down(const Plan& plan, const float* big_pad, float* small, float* packed_b) {
  const std::size_t kc = plan.options.down_kc, ldc = kSmallPlane * kLanes;
  for (std::size_t pos0 = 0; pos0 < kSmallPlane; pos0 += 3) {
    const std::size_t nv = std::min<std::size_t>(3, kSmallPlane - pos0);
    const float* b[3];
    for (std::size_t j = 0; j < 3; ++j) b[j] = big_pad + plan.down_base[std::min(pos0 + j, kSmallPlane - 1)];
    for (std::size_t kb = 0; kb < kK; kb += kc) {
      if (plan.options.down == DownKernel::packed) {
        if (nv == 3)
          pack_b_panel<3>(kc, plan.down_off.data() + kb, b, packed_b);
        else
          pack_b_panel<1>(kc, plan.down_off.data() + kb, b, packed_b);
      }
      for (std::size_t r = 0; r < kSmallC / kRows; ++r) {
        const float* a = plan.down_a.data() + r * kK * kRows + kb * kRows;
        float* c0 = small + r * kRows * ldc + pos0 * kLanes;
        if (plan.options.down == DownKernel::packed) {
          if (nv == 3)
            ag::gemm_detail::micro_kernel<3, true>(kc, a, packed_b, {}, c0, ldc, kb > 0);
          else
            ag::gemm_detail::micro_kernel<1, true>(kc, a, packed_b, {}, c0, ldc, kb > 0);
          continue;
        }
        float* c[3] = {c0, c0 + kLanes, c0 + 2 * kLanes};
        if (nv == 3)
          indirect_kernel<3>(kc, a, plan.down_off.data() + kb, b, c, ldc, kb > 0);
        else
          indirect_kernel<1>(kc, a, plan.down_off.data() + kb, b, c, ldc, kb > 0);
      }
    }
  }
}

// The interior of big_pad [32, 16, 16, 16] = the adjoint of down applied to small_pad, phase by
// phase (the border is not written: it stays zero for the next chunk's input).
void up(const Plan& plan, const float* small_pad, float* big) {
  const std::size_t kc = plan.options.up_kc, ldc = kBigPadPlane * kLanes;
  for (std::size_t ph = 0; ph < 4; ++ph) {
    const auto& base = plan.up_base[ph];
    const auto& dst = plan.up_dst[ph];
    for (std::size_t p0 = 0; p0 < base.size(); p0 += 3) {
      const std::size_t nv = std::min<std::size_t>(3, base.size() - p0);
      const float* b[3];
      std::size_t d[3];
      for (std::size_t j = 0; j < 3; ++j) {
        const std::size_t p = std::min(p0 + j, base.size() - 1);
        b[j] = small_pad + base[p];
        d[j] = static_cast<std::size_t>(dst[p]);
      }
      for (std::size_t kb = 0; kb < kUpK; kb += kc)
        for (std::size_t r = 0; r < kBigC / kRows; ++r) {
          const float* a = plan.up_a[ph].data() + r * kUpK * kRows + kb * kRows;
          float* rows = big + r * kRows * ldc;
          float* c[3] = {rows + d[0], rows + d[1], rows + d[2]};
          if (nv == 3)
            indirect_kernel<3>(kc, a, plan.up_off.data() + kb, b, c, ldc, kb > 0);
          else
            indirect_kernel<1>(kc, a, plan.up_off.data() + kb, b, c, ldc, kb > 0);
        }
    }
  }
}

// dw [64, 512] += the weight gradient of one chunk: small_pad the small side, big_pad the big.
// Blocks of weight_rows output channels (4 or 6; 64 = 10 x 6 + 4), whose gradient planes stay
// in L1 while the block walks the taps.
void weight(const Plan& plan, const float* small_pad, const float* big_pad, float* dw) {
  const std::size_t rows = plan.options.weight_rows;
  for (std::size_t ob = 0; ob < kSmallC; ob += rows) {
    const bool six = rows == 6 && ob + 6 <= kSmallC;
    for (std::size_t o = ob; o < std::min(ob + rows, kSmallC); o += six ? 6 : 4)
      for (std::size_t c = 0; c < kBigC; ++c)
        for (std::size_t kh = 0; kh < 4; ++kh) {
          const float* g = small_pad + o * kSmallPadPlane * kLanes;
          const float* x = big_pad + (c * kBigPadPlane + kh * kBigPad) * kLanes;
          float* d = dw + o * kK + c * kTaps + kh * 4;
          if (six)
            dw_kernel<6>(g, kSmallPadPlane * kLanes, kSmallPad, x, kBigPad, kSmall, kSmall, d, kK);
          else
            dw_kernel<4>(g, kSmallPadPlane * kLanes, kSmallPad, x, kBigPad, kSmall, kSmall, d, kK);
        }
  }
}

// The batch's chunks cut into parts (at most kSumParts, a run of neighbouring chunks each, the
// cut fixed by the batch size), each thread running a run of neighbouring parts in its own
// slot: chunk(slot, part, first image). (Runs, not parts dealt in turn: 6 chunks make parts of
// 1, 2, 1 and 2 chunks, which dealt in turn would give one of 2 threads twice the other's.)
template <class Chunk>
void run_parts(std::size_t batch, Workspace& ws, const Chunk& chunk) {
  const std::size_t chunks = batch / kLanes, parts = std::min(chunks, kSumParts), threads = ws.slots.size();
  ag::parallel_run(static_cast<int>(threads), [&](int thread) {
    const auto t = static_cast<std::size_t>(thread);
    for (std::size_t p = parts * t / threads; p < parts * (t + 1) / threads; ++p)
      for (std::size_t k = chunks * p / parts; k < chunks * (p + 1) / parts; ++k)
        chunk(ws.slots[static_cast<std::size_t>(thread)], p, k * kLanes);
  });
}

void start_sums(Workspace& ws) {
  std::memset(ws.part_dw, 0, kSumParts * kSmallC * kK * sizeof(float));
  std::memset(ws.part_db_lanes, 0, kSumParts * kSmallC * kLanes * sizeof(float));
}

// dw = the parts' sums in part order; db[c] = each part's lanes summed in lane order, the parts
// in order. Neither depends on the thread count.
void finish_sums(const Workspace& ws, std::size_t parts, std::size_t channels, float* dw, float* db) {
  std::memcpy(dw, ws.part_dw, kSmallC * kK * sizeof(float));
  for (std::size_t p = 1; p < parts; ++p)
    for (std::size_t i = 0; i < kSmallC * kK; ++i) dw[i] += ws.part_dw[p * kSmallC * kK + i];
  for (std::size_t c = 0; c < channels; ++c) {
    float sum = 0;
    for (std::size_t p = 0; p < parts; ++p)
      for (std::size_t l = 0; l < kLanes; ++l) sum += ws.part_db_lanes[(p * kSmallC + c) * kLanes + l];
    db[c] = sum;
  }
}

}  // namespace

Plan make_plan(const float* w, const Options& options) {
  Plan p;
  p.options = options;
  for (std::size_t c = 0; c < kBigC; ++c)
    for (std::size_t kh = 0; kh < 4; ++kh)
      for (std::size_t kw = 0; kw < 4; ++kw)
        p.down_off.push_back(static_cast<std::int32_t>((c * kBigPadPlane + kh * kBigPad + kw) * kLanes));
  for (std::size_t oh = 0; oh < kSmall; ++oh)
    for (std::size_t ow = 0; ow < kSmall; ++ow)
      p.down_base.push_back(static_cast<std::int32_t>((2 * oh * kBigPad + 2 * ow) * kLanes));
  for (std::size_t o = 0; o < kSmallC; ++o)
    for (int dh = 0; dh < 2; ++dh)
      for (int dw = 0; dw < 2; ++dw)
        p.up_off.push_back(static_cast<std::int32_t>(
            (static_cast<int>(o * kSmallPadPlane) - dh * static_cast<int>(kSmallPad) - dw) * static_cast<int>(kLanes)));
  for (std::size_t kh0 = 0; kh0 < 2; ++kh0)
    for (std::size_t kw0 = 0; kw0 < 2; ++kw0) {
      const std::size_t ph = kh0 * 2 + kw0;
      for (std::size_t xh = 0; xh < kBig; ++xh)
        for (std::size_t xw = 0; xw < kBig; ++xw) {
          if ((xh + 1) % 2 != kh0 || (xw + 1) % 2 != kw0) continue;
          const std::size_t gh = (xh + 1 - kh0) / 2 + 1, gw = (xw + 1 - kw0) / 2 + 1;
          p.up_base[ph].push_back(static_cast<std::int32_t>((gh * kSmallPad + gw) * kLanes));
          p.up_dst[ph].push_back(static_cast<std::int32_t>(((xh + 1) * kBigPad + xw + 1) * kLanes));
        }
      p.up_a[ph].resize(kBigC * kUpK);
      for (std::size_t c = 0; c < kBigC; ++c)
        for (std::size_t o = 0; o < kSmallC; ++o)
          for (std::size_t dh = 0; dh < 2; ++dh)
            for (std::size_t dw = 0; dw < 2; ++dw) {
              const std::size_t k = o * 4 + dh * 2 + dw, r = c / kRows, i = c % kRows;
              p.up_a[ph][r * kUpK * kRows + k * kRows + i] =
                  w[o * kK + c * kTaps + (kh0 + 2 * dh) * 4 + kw0 + 2 * dw];
            }
    }
  for (std::size_t c = 0; c < kBigC; ++c)
    for (std::size_t h = 0; h < kBig; ++h)
      for (std::size_t x = 0; x < kBig; ++x)
        p.big_pad_off.push_back(static_cast<std::int32_t>((c * kBigPadPlane + (h + 1) * kBigPad + x + 1) * kLanes));
  for (std::size_t o = 0; o < kSmallC; ++o)
    for (std::size_t h = 0; h < kSmall; ++h)
      for (std::size_t x = 0; x < kSmall; ++x)
        p.small_pad_off.push_back(
            static_cast<std::int32_t>((o * kSmallPadPlane + (h + 1) * kSmallPad + x + 1) * kLanes));
  p.down_a.resize(kSmallC * kK);
  for (std::size_t o = 0; o < kSmallC; ++o)
    for (std::size_t t = 0; t < kK; ++t) p.down_a[(o / kRows) * kK * kRows + t * kRows + o % kRows] = w[o * kK + t];
  return p;
}

Buffers make_buffers() {
  Buffers b{};
  b.big_pad = alloc_floats(kBigC * kBigPadPlane * kLanes);
  b.small_pad = alloc_floats(kSmallC * kSmallPadPlane * kLanes);
  b.small = alloc_floats(kSmallImage * kLanes);
  b.packed_b = alloc_floats(kK * 48);
  return b;
}

void free_buffers(Buffers& b) {
  for (float* p : {b.big_pad, b.small_pad, b.small, b.packed_b}) std::free(p);
  b = {};
}

Workspace make_workspace(int threads) {
  Workspace ws;
  for (int t = 0; t < threads; ++t) ws.slots.push_back(make_buffers());
  ws.part_dw = alloc_floats(kSumParts * kSmallC * kK);
  ws.part_db_lanes = alloc_floats(kSumParts * kSmallC * kLanes);
  return ws;
}

void free_workspace(Workspace& ws) {
  for (Buffers& b : ws.slots) free_buffers(b);
  std::free(ws.part_dw);
  std::free(ws.part_db_lanes);
  ws = {};
}

namespace {

// A side of the layers: its images' floats, a channel's positions, its channels, and where each
// of an image's floats goes in the side's zero-bordered planes.
struct Side {
  std::size_t per_image, per_channel, channels;
  const std::int32_t* pad_off;
};

Side side(const Plan& plan, bool big) {
  return big ? Side{kBigImage, kBigPlane, kBigC, plan.big_pad_off.data()}
             : Side{kSmallImage, kSmallPlane, kSmallC, plan.small_pad_off.data()};
}

float* pad_of(Buffers& s, bool big) { return big ? s.big_pad : s.small_pad; }

// The product from one side's padded planes to the other side (down from the big side, up from
// the small one), timed as its part; returns where its lanes are (with the offset table of
// each value, or null for [per_image][16]).
std::pair<const float*, const std::int32_t*> product(const Plan& plan, Buffers& s, bool from_big, std::uint64_t& t) {
  if (from_big) {
    down(plan, s.big_pad, s.small, s.packed_b);
    t = tick(s, down_gemm, t);
    return {s.small, nullptr};
  }
  up(plan, s.small_pad, s.big_pad);  // the interior only: after the weight gradient is done with big_pad
  t = tick(s, up_gemm, t);
  return {s.big_pad, plan.big_pad_off.data()};
}

// y = relu(the product of x + bias), x on the big side (encoder.2) or the small one (decoder.5).
void forward(const Plan& plan, bool input_big, const float* x, const float* bias, std::size_t batch, float* y,
             Workspace& ws) {
  const Side in = side(plan, input_big), out = side(plan, !input_big);
  run_parts(batch, ws, [&](Buffers& s, std::size_t, std::size_t n0) {
    std::uint64_t t = __rdtsc();
    to_lanes(x, in.per_image, n0, in.pad_off, pad_of(s, input_big));
    t = tick(s, transpose_in, t);
    const auto [lanes, off] = product(plan, s, input_big, t);
    from_lanes(lanes, off, out.per_image, n0, y, bias, true);
    tick(s, transpose_out, t);
  });
}

// dx, dW and db of forward, given its output y and dy.
void backward(const Plan& plan, bool input_big, const float* x, const float* y, const float* dy, std::size_t batch,
              float* dx, float* dw, float* db, Workspace& ws) {
  const Side in = side(plan, input_big), out = side(plan, !input_big);
  start_sums(ws);
  run_parts(batch, ws, [&](Buffers& s, std::size_t part, std::size_t n0) {
    std::uint64_t t = __rdtsc();
    to_lanes(dy, out.per_image, n0, out.pad_off, pad_of(s, !input_big), y,
             ws.part_db_lanes + part * kSmallC * kLanes, out.per_channel);
    to_lanes(x, in.per_image, n0, in.pad_off, pad_of(s, input_big));
    t = tick(s, transpose_in, t);
    weight(plan, s.small_pad, s.big_pad, ws.part_dw + part * kSmallC * kK);
    t = tick(s, weight_grad, t);
    const auto [lanes, off] = product(plan, s, !input_big, t);
    from_lanes(lanes, off, in.per_image, n0, dx, nullptr, false);
    tick(s, transpose_out, t);
  });
  finish_sums(ws, std::min(batch / kLanes, kSumParts), out.channels, dw, db);
}

}  // namespace

std::uint64_t hot_transposes(const Plan& plan, Workspace& ws, const float* x, int calls) {
  Buffers& s = ws.slots[0];
  const std::uint64_t t = __rdtsc();
  for (int i = 0; i < calls; ++i) {
    to_lanes(x, kBigImage, 0, plan.big_pad_off.data(), s.big_pad);
    from_lanes(s.big_pad, plan.big_pad_off.data(), kBigImage, 0, const_cast<float*>(x), nullptr, false);
  }
  return __rdtsc() - t;
}

void hot_products(const Plan& plan, Workspace& ws, int calls, std::uint64_t ticks[3]) {
  Buffers& s = ws.slots[0];
  std::uint64_t t = __rdtsc();
  for (int i = 0; i < calls; ++i) down(plan, s.big_pad, s.small, s.packed_b);
  std::uint64_t now = __rdtsc();
  ticks[0] = now - t;
  t = now;
  for (int i = 0; i < calls; ++i) up(plan, s.small_pad, s.big_pad);
  now = __rdtsc();
  ticks[1] = now - t;
  t = now;
  for (int i = 0; i < calls; ++i) weight(plan, s.small_pad, s.big_pad, ws.part_dw);
  ticks[2] = __rdtsc() - t;
}

void forward(const Plan& plan, Layer layer, const float* x, const float* bias, std::size_t batch, float* y,
             Workspace& ws) {
  forward(plan, layer == Layer::encoder2, x, bias, batch, y, ws);
}

void backward(const Plan& plan, Layer layer, const float* x, const float* y, const float* dy, std::size_t batch,
              float* dx, float* dw, float* db, Workspace& ws) {
  backward(plan, layer == Layer::encoder2, x, y, dy, batch, dx, dw, db, ws);
}

}  // namespace lanes
