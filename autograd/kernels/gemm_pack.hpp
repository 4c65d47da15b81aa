// Packing for gemm: copying a block of an operand into the order the micro-kernel reads it.
//
// The kernel wants, for each step p of the sum, the S values of one panel side by side
// (S = MR rows of op(A) or NR columns of op(B)), in memory that is contiguous, aligned and hot
// in cache. Packing turns all four transpose cases into that one layout:
//   dst[p * S + j] = element j of the panel at step p,  j < w,  zero for w <= j < S
// A stored operand runs either along the panel (copy_panel: row p of the source holds the w
// values) or across it (transpose_panel: row j of the source holds the kc values of element j).
//   op(A), not transposed: row i of A holds a(i, 0..k)   -> transpose_panel
//   op(A) = Aᵀ:            row p of A holds a(0..m, p)   -> copy_panel
//   op(B), not transposed: row p of B holds b(p, 0..n)   -> copy_panel
//   op(B) = Bᵀ:            row j of B holds b(0..k, j)   -> transpose_panel
// Packing costs one read and one write per element; the kernel then reuses each packed value
// many times (MR or NR multiply-adds per load), which is what makes it worth it. Transposing
// element by element is several times slower than copying, so full panels are transposed in
// registers, a W-step block at a time.
//
// Internal header of gemm.cpp.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "autograd/kernels/gemm_kernel.hpp"
#include "autograd/kernels/gemm_transpose.hpp"

namespace ag::gemm_detail {

// Floats a packing routine may write past the end of the panels it was asked for.
constexpr std::size_t kPackSlack = kW;

// dst[p * S + j] = src[p * ld + j] for p < kc, j < w; zero-padded to S.
template <std::size_t S>
inline void copy_panel(const float* src, std::size_t ld, std::size_t kc, std::size_t w,
                       float* dst) {
  if (w == S) {  // the common, full panel
    // Explicit vector moves, or a fixed-size memcpy for a panel of no whole vector: g++ 12
    // compiled std::copy_n of S floats into a call to memmove (plus a vzeroupper) per step,
    // which made packing a tenth of an AVX2 gemm's time.
    for (std::size_t p = 0; p < kc; ++p, src += ld, dst += S) {
      if constexpr (S % kW == 0) {
        for (std::size_t v = 0; v < S; v += kW) Vec::load_unaligned(src + v).store_unaligned(dst + v);
      } else {
        std::memcpy(dst, src, S * sizeof(float));
      }
    }
    return;
  }
  for (std::size_t p = 0; p < kc; ++p, src += ld, dst += S) {
    std::copy_n(src, w, dst);
    std::fill(dst + w, dst + S, 0.0F);
  }
}

// dst[p * S + j] = src[j * ld + p] for steps [p0, p1) and columns [j0, j1), element by element,
// kStrip steps at a time: the strip being written stays in L1 while each source row is read
// one cache line at a time.
template <std::size_t S>
inline void transpose_elements(const float* src, std::size_t ld, std::size_t p0, std::size_t p1,
                               std::size_t j0, std::size_t j1, float* dst) {
  constexpr std::size_t kStrip = 16;
  for (std::size_t q0 = p0; q0 < p1; q0 += kStrip) {
    const std::size_t q1 = std::min(q0 + kStrip, p1);
    for (std::size_t j = j0; j < j1; ++j)
      for (std::size_t p = q0; p < q1; ++p) dst[p * S + j] = src[j * ld + p];
  }
}

// dst[p * S + j] = src[j * ld + p] for p < kc, j < w; zero-padded to S.
// May write up to kPackSlack floats past the panel's end (see below): buffers leave room.
template <std::size_t S>
inline void transpose_panel(const float* src, std::size_t ld, std::size_t kc, std::size_t w,
                            float* dst) {
  // In-register transposes (gemm_transpose.hpp) take W steps at a time: W x W blocks for the
  // whole vectors of a panel as wide as some vectors, or one S x W block for a full panel
  // narrower than a vector whose width is a power of two (the packed block is then S contiguous
  // vectors). A full panel of another width below W (AVX2's 6-row A panels) is transposed as
  // a W x W block with W - S rows of zeros, and each of its W columns stored whole, in order:
  // the W - S lanes past a column's S values land where the next column goes and are then
  // overwritten by it; the last column's overhang lands past the block (rewritten by what is
  // packed there next, or in the buffer's slack). Other panels go element by element.
  constexpr bool whole_vectors = S % kW == 0;
  constexpr bool narrow = S < kW && (S & (S - 1)) == 0;
  constexpr bool overhang = S < kW && !narrow;
  constexpr std::size_t rows = whole_vectors ? kW : S;  // source rows per in-register block
  const std::size_t vector_cols = whole_vectors ? w / kW * kW : ((narrow || overhang) && w == S ? S : 0);
  const std::size_t vector_steps = vector_cols > 0 ? kc / kW * kW : 0;
  if constexpr (whole_vectors || narrow) {
    for (std::size_t p0 = 0; p0 < vector_steps; p0 += kW)
      for (std::size_t j0 = 0; j0 < vector_cols; j0 += rows) {
        Vec v[rows];
        for (std::size_t i = 0; i < rows; ++i) v[i] = Vec::load_unaligned(src + (j0 + i) * ld + p0);
        transpose_block<rows>(v);
        for (std::size_t q = 0; q < rows; ++q)
          v[q].store_unaligned(whole_vectors ? dst + (p0 + q) * S + j0 : dst + p0 * S + q * kW);
      }
  } else if constexpr (overhang) {
    for (std::size_t p0 = 0; p0 < vector_steps; p0 += kW) {
      Vec v[kW];
      for (std::size_t i = 0; i < S; ++i) v[i] = Vec::load_unaligned(src + i * ld + p0);
      for (std::size_t i = S; i < kW; ++i) v[i] = Vec(0.0F);
      transpose_block<kW>(v);
      for (std::size_t q = 0; q < kW; ++q) v[q].store_unaligned(dst + (p0 + q) * S);
    }
  }
  transpose_elements<S>(src, ld, 0, vector_steps, vector_cols, w, dst);  // the odd columns
  transpose_elements<S>(src, ld, vector_steps, kc, 0, w, dst);           // the last steps
  if (w < S)
    for (std::size_t p = 0; p < kc; ++p) std::fill(dst + p * S + w, dst + p * S + S, 0.0F);
}

}  // namespace ag::gemm_detail
