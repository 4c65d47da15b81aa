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
// many times (MR or NR multiply-adds per load), which is what makes it worth it.
//
// Internal header of gemm.cpp.
#pragma once

#include <algorithm>
#include <cstddef>

namespace ag::gemm_detail {

// dst[p * S + j] = src[p * ld + j] for p < kc, j < w; zero-padded to S.
template <std::size_t S>
inline void copy_panel(const float* src, std::size_t ld, std::size_t kc, std::size_t w,
                       float* dst) {
  if (w == S) {  // the common, full panel: a fixed-size copy the compiler turns into vector moves
    for (std::size_t p = 0; p < kc; ++p, src += ld, dst += S) std::copy_n(src, S, dst);
    return;
  }
  for (std::size_t p = 0; p < kc; ++p, src += ld, dst += S) {
    std::copy_n(src, w, dst);
    std::fill(dst + w, dst + S, 0.0F);
  }
}

// dst[p * S + j] = src[j * ld + p] for p < kc, j < w; zero-padded to S.
// Works through the panel in strips of kStrip steps, so the strip being written stays in the
// L1 cache while the w source rows are read one cache line at a time.
template <std::size_t S>
inline void transpose_panel(const float* src, std::size_t ld, std::size_t kc, std::size_t w,
                            float* dst) {
  constexpr std::size_t kStrip = 16;  // one 64-byte cache line of each source row
  for (std::size_t p0 = 0; p0 < kc; p0 += kStrip) {
    const std::size_t len = std::min(kStrip, kc - p0);
    float* d = dst + p0 * S;
    for (std::size_t j = 0; j < w; ++j) {
      const float* s = src + j * ld + p0;
      for (std::size_t p = 0; p < len; ++p) d[p * S + j] = s[p];
    }
    for (std::size_t p = 0; p < len; ++p) std::fill(d + p * S + w, d + p * S + S, 0.0F);
  }
}

}  // namespace ag::gemm_detail
