#include "autograd/kernels/vector_math.hpp"

// g++ 12 reports -Wmaybe-uninitialized inside its own AVX-512 intrinsics (the
// _mm512_undefined_* placeholders that xsimd's exp and log1p inline); a false positive in a
// system header, silenced for this file only.
#if defined(__GNUC__) && !defined(__clang__)  // clang has no such warning
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <xsimd/xsimd.hpp>

#include "autograd/stable_math.hpp"

namespace ag::vec {

// softplus(l) = max(l, 0) + log1p(e^-|l|) and sigmoid(l) = (l >= 0 ? 1 : e^-|l|) / (1 + e^-|l|)
// share the one exponential; the scalar tail uses the same formulas (stable_math.hpp).
double bce_with_logits(const float* l, const float* y, float* loss, float* sigmoid, std::size_t n) {
  using B = xsimd::batch<float>;
  constexpr std::size_t kLanes = B::size;
  const B zero(0.0F), one(1.0F);
  double total = 0.0;
  B block_sum(0.0F);  // float partial sums, flushed to double every 256 vectors
  std::size_t i = 0, in_block = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const B x = B::load_unaligned(l + i);
    const B t = B::load_unaligned(y + i);
    const B e = xsimd::exp(-xsimd::abs(x));
    const B e1 = one + e;
    const B e_over = xsimd::select(x >= zero, one, e) / e1;
    const B value = xsimd::max(x, zero) + xsimd::log1p(e) - x * t;
    e_over.store_unaligned(sigmoid + i);
    if (loss != nullptr) value.store_unaligned(loss + i);
    block_sum += value;
    if (++in_block == 256) {
      total += xsimd::hadd(block_sum);
      block_sum = B(0.0F);
      in_block = 0;
    }
  }
  total += xsimd::hadd(block_sum);
  for (; i < n; ++i) {
    const float value = stable::softplus(l[i]) - l[i] * y[i];
    sigmoid[i] = stable::sigmoid(l[i]);
    if (loss != nullptr) loss[i] = value;
    total += value;
  }
  return total;
}

}  // namespace ag::vec
