// The gemm micro-kernel: the few lines where nearly all of gemm's time goes.
//
// It computes one small tile of C, MR rows by NR columns, from two packed panels:
//   ap: kc steps of MR values of op(A)  (column p of the tile's rows, contiguous)
//   bp: kc steps of NR values of op(B)  (row p of the tile's columns, contiguous)
// Each step p is a rank-1 update of the tile: row i of the tile gets a(i, p) * b(p, 0..NR).
// The tile lives in vector registers for the whole loop (MR x NV registers, NV = NR / W),
// so per step the kernel does NV vector loads, MR broadcasts and MR x NV fused multiply-adds,
// and touches C only once at the end. Packing (gemm_pack.hpp) makes every case of trans_a and
// trans_b look the same to this kernel.
//
// Internal header of gemm.cpp.
#pragma once

#include <cstddef>
#include <xsimd/xsimd.hpp>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace ag::gemm_detail {

using Vec = xsimd::batch<float>;  // the widest SIMD register the build targets
constexpr std::size_t kW = Vec::size;

// Register blocking. The tile takes MR x NV registers; NV more hold the row of B and the
// broadcast of a(i, p) is folded into the multiply-add. With AVX-512's 32 registers (W = 16)
// an 8 x 48 tile uses 24 + 3; with the 16 registers of SSE/AVX a 6 x 2W tile uses 12 + 2.
// 8 rows also divide the batch size 128 and the 96 left at the end of an epoch, so no rows are
// wasted on padding there. Measured on Zen 5: 8 x 48 beat 12 x 32, 14 x 32 and 6 x 64.
constexpr std::size_t kMR = kW >= 16 ? 8 : 6;
constexpr std::size_t kNV = kW >= 16 ? 3 : 2;
constexpr std::size_t kNR = kNV * kW;

// Where a tile's operands are read: element (i, p) of the MR rows of op(A) at
// a[i * a_row + p * a_step], the NR columns of op(B) at step p from b + p * b_step. Packed
// panels have a_row = 1, a_step = MR, b_step = NR; a thin product reads A or B in place.
struct Strides {
  std::size_t a_row, a_step, b_step;
};

// tile (+)= the product of the MR rows and the first NV vectors of the NR columns (the last
// panel of a matrix may be narrower), over kc steps. With Packed, a and b are packed panels
// (b aligned for vector loads) and `s` is not read: the strides are constants. c is any
// row-major tile with leading dimension ldc. accumulate: add to c instead of overwriting it.
//
// Never inlined: inside the loops of gemm_rect, with their own values live, g++ 12 kept only
// part of the tile in registers on AVX2 (16 registers, 15 needed) and spilled the rest to the
// stack on every step, at under half of OpenBLAS's speed. A call per tile costs nothing next
// to the kc steps inside it.
template <std::size_t NV, bool Packed>
[[gnu::noinline]] void micro_kernel(std::size_t kc, const float* a, const float* b, Strides s, float* c,
                                    std::size_t ldc, bool accumulate) {
  const std::size_t a_row = Packed ? 1 : s.a_row, a_step = Packed ? kMR : s.a_step;
  const std::size_t b_step = Packed ? kNR : s.b_step;
  // The tile of C is touched only after the kc steps: ask for its lines now, so that they
  // arrive while the loop runs instead of stalling the stores at the end (with the tiles taken
  // down a column panel, consecutive tiles' rows are far apart and no hardware prefetcher
  // guesses them). Measured on the Xeon with the macro-kernel's loop order: about 7% on the
  // VAE's dW products at one thread, for both changes together.
#pragma GCC unroll 32
  for (std::size_t i = 0; i < kMR; ++i)
#pragma GCC unroll 4
    for (std::size_t v = 0; v < NV; ++v) __builtin_prefetch(c + i * ldc + v * kW, 1, 3);
  Vec acc[kMR][NV];
  for (std::size_t i = 0; i < kMR; ++i)
    for (std::size_t v = 0; v < NV; ++v) acc[i][v] = Vec(0.0F);

  for (std::size_t p = 0; p < kc; ++p, a += a_step, b += b_step) {
    Vec bv[NV];
    for (std::size_t v = 0; v < NV; ++v)
      bv[v] = Packed ? Vec::load_aligned(b + v * kW) : Vec::load_unaligned(b + v * kW);
    for (std::size_t i = 0; i < kMR; ++i) {
      const Vec av(a[i * a_row]);  // broadcast a(i, p)
      for (std::size_t v = 0; v < NV; ++v) acc[i][v] = xsimd::fma(av, bv[v], acc[i][v]);
    }
  }

  // Fully unrolled (every index a constant), so acc stays in registers to the end instead of
  // being spilled to the stack for a loop to index.
  if (accumulate) {
#pragma GCC unroll 32
    for (std::size_t i = 0; i < kMR; ++i)
#pragma GCC unroll 4
      for (std::size_t v = 0; v < NV; ++v) {
        float* ci = c + i * ldc + v * kW;
        (acc[i][v] + Vec::load_unaligned(ci)).store_unaligned(ci);
      }
  } else {
#pragma GCC unroll 32
    for (std::size_t i = 0; i < kMR; ++i)
#pragma GCC unroll 4
      for (std::size_t v = 0; v < NV; ++v) acc[i][v].store_unaligned(c + i * ldc + v * kW);
  }
}

constexpr std::size_t kNarrowCols = 4;  // (narrow_kernel's, below)

#if defined(__AVX512F__)
// The last column panel of a product, when it holds at most kNarrowCols live columns (the conv
// VAE's 7 x 7 layers: 196 = 4 x 48 + 4 columns a group of 4 images): micro_kernel<1> spends a
// 16-float vector of every row on them, 8 broadcasts and a load for 8 fused multiply-adds a
// step, bound by the loads. Here the rows go in the lanes instead: P row panels of 8 rows
// (kMR = 8 on AVX-512, 8-float vectors) against the first kNarrowCols columns of the packed B
// panel (zero past its live columns, so computing them all is harmless), per step P loads and
// kNarrowCols broadcasts for P x kNarrowCols multiply-adds in as many independent chains.
// Each element's chain is micro_kernel's, fma(a(i, p), b(p, j), acc) from 0 in step order, so
// its bits are too.
// C [P kMR, cols] (+)= that for cols <= kNarrowCols: the a panels `a_panel` floats apart (kc x
// kMR each), b one packed B panel (kc x kNR), c row-major with leading dimension ldc.

template <std::size_t P>
[[gnu::noinline]] void narrow_kernel(std::size_t kc, const float* a, std::size_t a_panel, const float* b,
                                     std::size_t cols, float* c, std::size_t ldc, bool accumulate) {
  static_assert(kMR == 8, "the rows of an A panel fill one 8-float vector");
  __m256 acc[P][kNarrowCols];
  for (std::size_t q = 0; q < P; ++q)
    for (std::size_t j = 0; j < kNarrowCols; ++j) acc[q][j] = _mm256_setzero_ps();
  for (std::size_t p = 0; p < kc; ++p, b += kNR) {
    __m256 bv[kNarrowCols];
    for (std::size_t j = 0; j < kNarrowCols; ++j) bv[j] = _mm256_broadcast_ss(b + j);
    for (std::size_t q = 0; q < P; ++q) {
      const __m256 av = _mm256_loadu_ps(a + q * a_panel + p * kMR);
      for (std::size_t j = 0; j < kNarrowCols; ++j) acc[q][j] = _mm256_fmadd_ps(av, bv[j], acc[q][j]);
    }
  }
#pragma GCC unroll 4
  for (std::size_t q = 0; q < P; ++q)
#pragma GCC unroll 4
    for (std::size_t j = 0; j < kNarrowCols; ++j) {
      if (j >= cols) break;
      alignas(32) float column[kMR];
      _mm256_store_ps(column, acc[q][j]);
      float* cj = c + q * kMR * ldc + j;
      for (std::size_t r = 0; r < kMR; ++r) cj[r * ldc] = accumulate ? cj[r * ldc] + column[r] : column[r];
    }
}
#endif

}  // namespace ag::gemm_detail
