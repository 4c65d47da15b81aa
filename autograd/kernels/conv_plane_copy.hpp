// A copy of one image plane into a layout of its own (internal to the conv kernels: pad_images'
// padded, phased and shifted planes), written one whole destination vector at a time.
//
// Every float of the destination is a given float of the source plane or zero, the same for
// every plane of a layer, so the map is turned once per call into a plan: for each 16-float
// vector of the destination, the pieces that fill it, each a 16-float window of the source
// loaded and permuted into the lanes that read from it (the others kept). A plane is then
// copied with one load and one permute per piece and one store per vector, each vector written
// once with its zeros. The row by row copy this replaces (split a plane into its stride phases
// in a staging area, then copy each 7-float shifted row with a 16-float store) stored each
// float several times, most of those stores crossing a cache line, and reloaded the staging
// area before its stores had reached the cache: about 27% of the VAE's encoder.2 forward. The
// planes of a batch of encoder.2's input (a harness, 1 thread): 0.47 -> 0.31 ms phased for its
// forward, 0.25 -> 0.15 ms padded as they are for its weight gradient.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace ag::conv_detail {

#if defined(__AVX512F__)
class PlaneCopyPlan {
 public:
  static constexpr std::size_t kLanes = 16;
  // A plan too large for these (planes over 2048 floats, or over 256 pieces: the VAE's 7 x 7
  // layers take 84 for their phased planes, 16 for the plain ones) is refused and the caller
  // copies row by row: the plan lives on the stack (about 17 KB, and pad_images' map of source
  // indices beside it 8 KB more).
  static constexpr std::size_t kMaxVectors = 128, kMaxPieces = 256;

  /// Plans dst[d] = source[source_index[d]] for d < dst_floats, 0 where source_index[d] < 0
  /// (indices below source_floats). False if the plan does not fit.
  bool build(const std::int32_t* source_index, std::size_t dst_floats, std::size_t source_floats) {
    vectors_ = (dst_floats + kLanes - 1) / kLanes;
    if (vectors_ == 0 || vectors_ > kMaxVectors || source_floats < kLanes) return false;
    const std::size_t tail = dst_floats - (vectors_ - 1) * kLanes;
    tail_mask_ = static_cast<__mmask16>((1U << tail) - 1);
    // lane l's index into (window, out) when it keeps out's value: 16 + l
    const __m512i keep = _mm512_setr_epi32(16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31);
    const auto last_start = static_cast<std::int32_t>(source_floats - kLanes);
    std::size_t n = 0;
    for (std::size_t v = 0; v < vectors_; ++v) {
      const __mmask16 live = v + 1 < vectors_ ? __mmask16(0xFFFF) : tail_mask_;
      const __m512i src = _mm512_maskz_loadu_epi32(live, source_index + v * kLanes);
      // lanes still to fill: those with a source (the rest stay zero)
      __mmask16 left = _mm512_mask_cmpge_epi32_mask(live, src, _mm512_setzero_si512());
      pieces_[v] = 0;
      while (left) {
        if (n == kMaxPieces) return false;
        // The window starts at the first lane's source, or ends at the plane's end (so its
        // load needs no mask); every lane reading from it joins.
        const std::int32_t first = source_index[v * kLanes + static_cast<std::size_t>(__builtin_ctz(left))];
        const std::int32_t start = std::min(first, last_start);
        const __m512i rel = _mm512_sub_epi32(src, _mm512_set1_epi32(start));
        const __mmask16 in = _mm512_mask_cmplt_epu32_mask(left, rel, _mm512_set1_epi32(kLanes));
        index_[n] = _mm512_mask_mov_epi32(keep, in, rel);
        offset_[n] = start;
        left = static_cast<__mmask16>(left & ~in);
        ++pieces_[v], ++n;
      }
    }
    make_uniform(keep);
    return true;
  }

  /// dst[i] = the planned copy of source[i] for i < Planes (dst_floats written to each, every
  /// one). Planes side by side share the plan's loads and keep Planes chains of permutes (3
  /// cycles each) in flight.
  template <std::size_t Planes>
  void copy(const float* const* source, float* const* dst) const {
    switch (uniform_) {
      case 1: return copy<Planes, 1>(source, dst);
      case 2: return copy<Planes, 2>(source, dst);
      case 3: return copy<Planes, 3>(source, dst);
      case 4: return copy<Planes, 4>(source, dst);
      default: return copy<Planes, 0>(source, dst);
    }
  }

 private:
  // PerVector > 0: every vector has that many pieces (make_uniform), a loop of fixed trip count
  // whose exit is predicted (kept rolled: unrolled it was 20% slower); 0: each its own count, a
  // loop whose exits the branch predictor misses.
  template <std::size_t Planes, std::size_t PerVector>
  void copy(const float* const* source, float* const* dst) const {
    std::size_t n = 0;
    for (std::size_t v = 0; v < vectors_; ++v) {
      __m512 out[Planes];
      for (std::size_t i = 0; i < Planes; ++i) out[i] = _mm512_setzero_ps();
#pragma GCC unroll 1
      for (std::size_t e = n + (PerVector ? PerVector : pieces_[v]); n < e; ++n) {
        const __m512i index = index_[n];
        const std::int32_t offset = offset_[n];
        for (std::size_t i = 0; i < Planes; ++i)
          out[i] = _mm512_permutex2var_ps(_mm512_loadu_ps(source[i] + offset), index, out[i]);
      }
      for (std::size_t i = 0; i < Planes; ++i)
        if (v + 1 < vectors_)
          _mm512_storeu_ps(dst[i] + v * kLanes, out[i]);
        else
          _mm512_mask_storeu_ps(dst[i] + v * kLanes, tail_mask_, out[i]);
    }
  }

  // Gives every vector the most pieces any has (up to 4), the extra ones keeping every lane
  // (offset 0, index `keep`): a few permutes more (80 -> 84 a plane on the VAE's encoder.2)
  // for a loop without data-dependent exits.
  void make_uniform(__m512i keep) {
    uniform_ = 0;
    std::size_t most = 0, n = 0;
    for (std::size_t v = 0; v < vectors_; ++v) most = std::max<std::size_t>(most, pieces_[v]), n += pieces_[v];
    if (most == 0 || most > 4 || most * vectors_ > kMaxPieces) return;
    // from the last vector back: vector v's pieces move up to [v most, v most + its count)
    for (std::size_t v = vectors_; v-- > 0;) {
      n -= pieces_[v];
      for (std::size_t k = most; k-- > 0;) {
        const std::size_t to = v * most + k;
        if (k < pieces_[v]) {
          index_[to] = index_[n + k], offset_[to] = offset_[n + k];
        } else {
          index_[to] = keep, offset_[to] = 0;
        }
      }
    }
    uniform_ = most;
  }

  std::size_t vectors_ = 0, uniform_ = 0;
  __mmask16 tail_mask_ = 0;
  std::uint8_t pieces_[kMaxVectors];
  __m512i index_[kMaxPieces];
  std::int32_t offset_[kMaxPieces];
};
#endif

}  // namespace ag::conv_detail
