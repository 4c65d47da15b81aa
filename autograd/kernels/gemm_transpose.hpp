// In-register transposes for gemm's packing, built from two portable xsimd operations:
//   swizzle(x, pattern)      lane l of the result is lane pattern[l] of x
//   select(mask, x, y)       lane l of the result is x[l] where mask[l] is set, else y[l]
// with patterns and masks fixed at compile time (an instruction or a few, depending on the
// instruction set). Measured on AVX-512, a panel transposed this way packs in under twice the
// time of a plain copy; element by element it took five times as long, and packing the
// transposed operand was then a sixth of the whole gemm's time.
//
// The idea: number the vectors of a block and the lanes inside a vector in binary. A transpose
// swaps "which vector" with "which lane", one bit at a time: exchange_bits swaps bit VBit of
// the vector index with bit LBit of the lane index, by trading half the lanes between each pair
// of vectors whose index differs in VBit. log2(R) such exchanges transpose an R x W block.
//
// Internal header of gemm.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "autograd/kernels/gemm_kernel.hpp"

// GCC 12's own AVX-512 header trips its -Wmaybe-uninitialized inside _mm512_permutexvar_ps,
// which xsimd::swizzle uses (a known false positive, fixed in GCC 13). Silence it here only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace ag::gemm_detail {

constexpr unsigned log2_exact(std::size_t x) { return x <= 1 ? 0 : 1 + log2_exact(x / 2); }
constexpr unsigned kLogW = log2_exact(kW);

// Compile-time lane patterns (xsimd calls get(lane, lane_count) for each lane).
template <unsigned Bit>
struct FlipLaneBit {  // lane l reads lane l ^ 2^Bit: swaps neighbouring groups of 2^Bit lanes
  static constexpr std::uint32_t get(std::uint32_t lane, std::uint32_t) {
    return lane ^ (1U << Bit);
  }
};
template <unsigned Bit>
struct LaneBitSet {  // the lanes whose index has bit Bit set
  static constexpr bool get(std::uint32_t lane, std::uint32_t) { return ((lane >> Bit) & 1U) != 0; }
};
template <unsigned LogR>
struct RotateLaneBits {  // lane m reads the lane whose index is m's bits rotated left by LogR
  static constexpr std::uint32_t get(std::uint32_t m, std::uint32_t) {
    return ((m & ((1U << LogR) - 1)) << (kLogW - LogR)) | (m >> LogR);
  }
};

// Moves the element at (vector i, lane l) of v[0..R) to the position whose vector index and lane
// index have bit VBit of i and bit LBit of l swapped.
template <std::size_t R, unsigned VBit, unsigned LBit>
inline void exchange_bits(Vec* v) {
  using Pattern = xsimd::batch<std::uint32_t>;
  constexpr auto flip = xsimd::make_batch_constant<Pattern, FlipLaneBit<LBit>>();
  constexpr auto upper = xsimd::make_batch_bool_constant<Vec, LaneBitSet<LBit>>();
  for (std::size_t i = 0; i < R; ++i) {
    if (i & (std::size_t{1} << VBit)) continue;
    const std::size_t j = i | (std::size_t{1} << VBit);  // the partner vector
    const Vec lo = v[i], hi = v[j];
    v[i] = xsimd::select(upper, xsimd::swizzle(hi, flip), lo);  // its upper lanes from hi
    v[j] = xsimd::select(upper, hi, xsimd::swizzle(lo, flip));  // hi's lower lanes from lo
  }
}

// Row bit b trades places with lane bit (log2 W - log2 R + b), for every row bit b: afterwards
// the vector index is the top log2 R bits of the column, and the lane holds the rest of the
// column above the row.
template <std::size_t R, unsigned... B>
inline void exchange_row_bits(Vec* v, std::integer_sequence<unsigned, B...>) {
  (exchange_bits<R, B, kLogW - log2_exact(R) + B>(v), ...);
}

// On entry v[i] holds row i of an R x W block (R a power of two, R <= W). On return the R * W
// values are in column order, the order of a packed panel of width R:
//   a(0, 0) a(1, 0) ... a(R-1, 0) a(0, 1) a(1, 1) ...
// split into R vectors. For R = W that is the plain transpose: v[q] holds column q.
template <std::size_t R>
inline void transpose_block(Vec* v) {
  constexpr unsigned log_r = log2_exact(R);
  static_assert(std::size_t{1} << log_r == R && R <= kW, "R must be a power of two <= W");
  exchange_row_bits<R>(v, std::make_integer_sequence<unsigned, log_r>{});
  if constexpr (R < kW) {  // move the row bits to the bottom of the lane index
    using Pattern = xsimd::batch<std::uint32_t>;
    constexpr auto rotate = xsimd::make_batch_constant<Pattern, RotateLaneBits<log_r>>();
    for (std::size_t q = 0; q < R; ++q) v[q] = xsimd::swizzle(v[q], rotate);
  }
}

}  // namespace ag::gemm_detail

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
