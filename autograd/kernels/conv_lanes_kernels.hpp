// The micro-kernels of the batch-in-lanes convolution (conv_lanes.hpp; AVX-512 only).
//
// With a chunk of 16 images in the vector lanes, every operand of a convolution's GEMMs is a
// grid of 16-float vectors, one per (channel, pixel) of the zero-bordered planes, and every
// column of im2col is one of those vectors read in place: no panel is gathered, no col2im adds.
#pragma once

#if defined(__AVX512F__)
#include <cstddef>
#include <cstdint>
#include <immintrin.h>

#include "autograd/kernels/conv_lanes_shuffle.hpp"

namespace ag::conv_lanes_detail {

constexpr std::size_t kRows = 8;  // rows of an A panel (output channels of a tile)

/// An indirect GEMM tile: kRows x NV output vectors, c[j] + i ldc (+)= sum over p < kc of
/// a[p kRows + i] * B_j(p), where B_j(p) is the 16-float vector at b[j] + off[p]. The offsets
/// are those of the kernel taps (or of the transposed convolution's source pixels) from a
/// position's base, the same for every position, so one table serves them all; the bases are
/// the tile's NV positions. With accumulate the chains start from c's values (a K block
/// continuing the one before: the same chain of fused multiply-adds as one long K).
template <std::size_t NV>
[[gnu::noinline]] void indirect_kernel(std::size_t kc, const float* a, const std::int32_t* off,
                                       const float* const* b, float* const* c, std::size_t ldc, bool accumulate) {
  const float* bj[NV];
  for (std::size_t j = 0; j < NV; ++j) bj[j] = b[j];
  __m512 acc[kRows][NV];
#pragma GCC unroll 8
  for (std::size_t i = 0; i < kRows; ++i)
#pragma GCC unroll 3
    for (std::size_t j = 0; j < NV; ++j)
      acc[i][j] = accumulate ? _mm512_load_ps(c[j] + i * ldc) : _mm512_setzero_ps();
  for (std::size_t p = 0; p < kc; ++p, a += kRows) {
    const std::int32_t o = off[p];
    __m512 bv[NV];
#pragma GCC unroll 3
    for (std::size_t j = 0; j < NV; ++j) bv[j] = _mm512_load_ps(bj[j] + o);
#pragma GCC unroll 8
    for (std::size_t i = 0; i < kRows; ++i) {
      const __m512 av = _mm512_set1_ps(a[i]);
#pragma GCC unroll 3
      for (std::size_t j = 0; j < NV; ++j) acc[i][j] = _mm512_fmadd_ps(av, bv[j], acc[i][j]);
    }
  }
#pragma GCC unroll 8
  for (std::size_t i = 0; i < kRows; ++i)
#pragma GCC unroll 3
    for (std::size_t j = 0; j < NV; ++j) _mm512_store_ps(c[j] + i * ldc, acc[i][j]);
}

/// dw[i ldw + j] += sums[4 i + j] for the first `rows` rows i and j < 4.
inline void add_tile_sums(__m512 sums, float* dw, std::size_t ldw, std::size_t rows) {
#pragma GCC unroll 4
  for (std::size_t i = 0; i < rows; ++i) {
    float* d = dw + i * ldw;
    const __m128 s = i == 0   ? _mm512_castps512_ps128(sums)
                     : i == 1 ? _mm512_extractf32x4_ps(sums, 1)
                     : i == 2 ? _mm512_extractf32x4_ps(sums, 2)
                              : _mm512_extractf32x4_ps(sums, 3);
    _mm_storeu_ps(d, _mm_add_ps(_mm_loadu_ps(d), s));
  }
}

/// The weight gradient of an R x 4 tile of weights (R = 4 or 6): rows o0 .. o0 + R - 1 (g, a
/// row every g_row floats) by 4 neighbouring taps kw = 0..3 of one (c, kh) (x: the vector of tap
/// kw at position (oh, ow) is at x + (2 oh row_stride + 2 ow + kw) 16, a stride-2 convolution
/// over planes of row_stride vectors). g is the gradient's plane of one channel with a
/// one-vector border (gradient at (oh, ow) at g + ((oh + 1) g_width + ow + 1) 16). Each image
/// (lane) sums its out_h x out_w positions in row order, one fused multiply-add chain per
/// weight; the 16 lanes are then summed by lane_sums16's tree and the results added to
/// dw[i ldw + j].
template <std::size_t R>
[[gnu::noinline]] void dw_kernel(const float* g, std::size_t g_row, std::size_t g_width, const float* x,
                                 std::size_t row_stride, std::size_t out_h, std::size_t out_w, float* dw,
                                 std::size_t ldw) {
  static_assert(R == 4 || R == 6);
  __m512 acc[R * 4];
  for (auto& v : acc) v = _mm512_setzero_ps();
  for (std::size_t oh = 0; oh < out_h; ++oh) {
    const float* gp = g + ((oh + 1) * g_width + 1) * 16;
    const float* xp = x + 2 * oh * row_stride * 16;
#pragma GCC unroll 1
    for (std::size_t ow = 0; ow < out_w; ++ow, gp += 16, xp += 32) {
      __m512 xv[4];
#pragma GCC unroll 4
      for (std::size_t j = 0; j < 4; ++j) xv[j] = _mm512_load_ps(xp + 16 * j);
#pragma GCC unroll 6
      for (std::size_t i = 0; i < R; ++i) {
        const __m512 gv = _mm512_load_ps(gp + i * g_row);
#pragma GCC unroll 4
        for (std::size_t j = 0; j < 4; ++j) acc[4 * i + j] = _mm512_fmadd_ps(gv, xv[j], acc[4 * i + j]);
      }
    }
  }
  add_tile_sums(lane_sums16(acc), dw, ldw, 4);
  if constexpr (R == 6) {
    const __m512 rest[16] = {acc[16], acc[17], acc[18], acc[19], acc[20], acc[21], acc[22], acc[23],
                             acc[16], acc[17], acc[18], acc[19], acc[20], acc[21], acc[22], acc[23]};
    add_tile_sums(lane_sums16(rest), dw + 4 * ldw, ldw, 2);
  }
}

}  // namespace ag::conv_lanes_detail
#endif  // __AVX512F__
