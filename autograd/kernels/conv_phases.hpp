// One image row moved into or out of its stride phases (internal to the conv kernels).
//
// With stride s, the padded row's column X belongs to phase X % s, at column X / s of it; the
// phases of one padded row lie `phase` floats apart. Moving a row of the image there (or back)
// is a strided copy, which for stride 2 AVX2 does 8 floats at a time: one permute splits 8
// neighbours into their even and odd lanes, one unpack interleaves them again. The last 8 may
// overlap the 8 before (rows are short: 14 floats in the VAE's second layer).
#pragma once

#include <algorithm>
#include <cstddef>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace ag::conv_detail {

/// out[(X % s) phase + X / s] = row[x] for x < n, X = left + x.
inline void row_to_phases(const float* row, std::size_t n, std::size_t left, std::size_t s, std::size_t phase,
                          float* out) {
  std::size_t x = 0;
#if defined(__AVX2__)
  if (s == 2 && n >= 8) {
    const __m256i evens_then_odds = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    for (;; x += 8) {
      if (x + 8 > n) x = n - 8;
      const __m256 v = _mm256_permutevar8x32_ps(_mm256_loadu_ps(row + x), evens_then_odds);
      const std::size_t first = left + x, second = first + 1;  // the padded columns of lanes 0 and 1
      _mm_storeu_ps(out + first % 2 * phase + first / 2, _mm256_castps256_ps128(v));
      _mm_storeu_ps(out + second % 2 * phase + second / 2, _mm256_extractf128_ps(v, 1));
      if (x + 8 == n) return;
    }
  }
#endif
  for (std::size_t q = (left + x) / s, r = (left + x) % s; x < n; ++x) {
    out[r * phase + q] = row[x];
    if (++r == s) r = 0, ++q;
  }
}

/// row[x] = in[(X % s) phase + X / s] for x < n, X = left + x; with Relu, max(that, 0) as
/// std::max(v, 0.0F) computes it (v < 0 ? 0 : v), so a ReLU after the move costs no pass of its
/// own (a pass over the rows just stored read vectors that straddled two of these stores, each
/// such load waiting for them to reach the cache: about 8% of col2im_gemm on the VAE's decoder.5).
template <bool Relu = false>
inline void row_from_phases(const float* in, std::size_t n, std::size_t left, std::size_t s, std::size_t phase,
                            float* row) {
  std::size_t x = 0;
#if defined(__AVX2__)
  if (s == 2 && n >= 8) {
    const __m256 zero = _mm256_setzero_ps();
    for (;; x += 8) {
      if (x + 8 > n) x = n - 8;
      const std::size_t first = left + x, second = first + 1;
      const __m128 even = _mm_loadu_ps(in + first % 2 * phase + first / 2);  // lanes 0, 2, 4, 6
      const __m128 odd = _mm_loadu_ps(in + second % 2 * phase + second / 2);
      __m256 v = _mm256_set_m128(_mm_unpackhi_ps(even, odd), _mm_unpacklo_ps(even, odd));
      if constexpr (Relu) v = _mm256_blendv_ps(v, zero, _mm256_cmp_ps(v, zero, _CMP_LT_OQ));
      _mm256_storeu_ps(row + x, v);
      if (x + 8 == n) return;
    }
  }
#endif
  for (std::size_t q = (left + x) / s, r = (left + x) % s; x < n; ++x) {
    const float v = in[r * phase + q];
    row[x] = Relu ? std::max(v, 0.0F) : v;
    if (++r == s) r = 0, ++q;
  }
}

}  // namespace ag::conv_detail
