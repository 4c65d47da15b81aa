// The register shuffles of the batch-in-lanes convolution (conv_lanes.hpp; AVX-512 only): the 16 x 16
// transpose that moves a chunk of 16 images between NCHW rows and one 16-float vector per
// channel-pixel, and the lane sums that fold the weight gradient's per-image partial sums.
#pragma once

#if defined(__AVX512F__)
#include <immintrin.h>

namespace ag::conv_lanes_detail {

/// r[i][j] <- r[j][i]: 16 vectors as a 16 x 16 block. 64 shuffles: pairs of floats, then of
/// float pairs (as doubles), then 4 x 4 blocks of 128-bit lanes.
inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // r[4i + j], 128-bit lane k: column 4k + j of rows 4i .. 4i + 3.
  for (int i = 0; i < 4; ++i) {
    const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
    const __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
    r[4 * i + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  for (int j = 0; j < 4; ++j) {
    const __m512 a = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x44), b = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xEE);
    const __m512 c = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x44),
                 d = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xEE);
    r[j] = _mm512_shuffle_f32x4(a, c, 0x88);
    r[4 + j] = _mm512_shuffle_f32x4(a, c, 0xDD);
    r[8 + j] = _mm512_shuffle_f32x4(b, d, 0x88);
    r[12 + j] = _mm512_shuffle_f32x4(b, d, 0xDD);
  }
}

/// Lane i of the result = the sum of the 16 lanes of v[i], by a tree: neighbouring floats,
/// then halves of 128-bit lanes, then 128-bit lanes, 15 adds and 30 shuffles for 16 sums.
inline __m512 lane_sums16(const __m512 v[16]) {
  __m512 w[8];
  for (int k = 0; k < 8; ++k)
    w[k] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * k], v[2 * k + 1]), _mm512_unpackhi_ps(v[2 * k], v[2 * k + 1]));
  __m512 x[4];
  for (int k = 0; k < 4; ++k)
    x[k] = _mm512_add_ps(_mm512_shuffle_ps(w[2 * k], w[2 * k + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_ps(w[2 * k], w[2 * k + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  __m512 y[2];
  for (int k = 0; k < 2; ++k)
    y[k] = _mm512_add_ps(_mm512_shuffle_f32x4(x[2 * k], x[2 * k + 1], 0x88),
                         _mm512_shuffle_f32x4(x[2 * k], x[2 * k + 1], 0xDD));
  return _mm512_add_ps(_mm512_shuffle_f32x4(y[0], y[1], 0x88), _mm512_shuffle_f32x4(y[0], y[1], 0xDD));
}

}  // namespace ag::conv_lanes_detail
#endif  // __AVX512F__
