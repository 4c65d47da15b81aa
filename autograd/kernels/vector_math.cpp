#include "autograd/kernels/vector_math.hpp"

// g++ 12 reports -Wmaybe-uninitialized inside its own AVX-512 intrinsics (the
// _mm512_undefined_* placeholders that xsimd's exp and log1p inline); a false positive in a
// system header, silenced for this file only.
#if defined(__GNUC__) && !defined(__clang__)  // clang has no such warning
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <algorithm>
#include <array>

#include <xsimd/xsimd.hpp>

#include "autograd/kernels/parallel.hpp"
#include "autograd/stable_math.hpp"

namespace ag::vec {

namespace {

using B = xsimd::batch<float>;
constexpr std::size_t kLanes = B::size;
// The sum of the losses is taken in float over blocks of this many vectors, each block's sum
// then added in double, in block order: the same additions whatever the thread count.
constexpr std::size_t kBlockVectors = 256;
// Blocks handed to the threads per round (their sums wait on the stack until added).
constexpr std::size_t kRoundBlocks = 512;
// Below this many elements one thread does it all: a block costs about 3 us here (about 1.5 ns
// per element), a second thread's wake-up and hand-back about 1 us.
constexpr std::size_t kMinParallelElements = 16 * kBlockVectors * kLanes;

// sigmoid(x) = (x >= 0 ? 1 : e) / (1 + e), given e = e^-|x|.
B sigmoid_from_exp(const B& x, const B& e) {
  const B one(1.0F);
  return xsimd::select(x >= B(0.0F), one, e) / (one + e);
}

// log(1 + e) for e in [0, 1] (NaN stays NaN): e P(e), P of degree 9 fitted to log1p(e) / e on
// [0, 1] (Chebyshev; 1.3e-8 relative before rounding). Within 2 ulp of the correctly rounded
// log1p for every float in [0, 1] (checked exhaustively when it was written). xsimd::log1p,
// for any argument, took more than half of the BCE forward with its two divisions; the loss
// value is all it feeds (the gradient comes from the sigmoid), so training is unchanged.
B log1p_unit(const B& e) {
  B p(-0.00321351093F);
  for (const float c : {0.0196467703F, -0.0564304191F, 0.105327422F, -0.152511455F, 0.196513747F, -0.249477822F,
                        0.333290957F, -0.499998506F, 0.999999987F})
    p = xsimd::fma(p, e, B(c));
  return e * p;
}

// softplus(l) = max(l, 0) + log1p(e^-|l|) and sigmoid(l) = (l >= 0 ? 1 : e^-|l|) / (1 + e^-|l|)
// share the one exponential. Vectors [v0, v1) of the input, in one block: returns its sum.
float bce_block(const float* l, const float* y, float* loss, float* sigmoid, std::size_t v0, std::size_t v1) {
  const B zero(0.0F);
  B block_sum(0.0F);
  for (std::size_t i = v0 * kLanes; i < v1 * kLanes; i += kLanes) {
    const B x = B::load_unaligned(l + i);
    const B t = B::load_unaligned(y + i);
    const B e = xsimd::exp(-xsimd::abs(x));
    const B value = xsimd::max(x, zero) + log1p_unit(e) - x * t;
    sigmoid_from_exp(x, e).store_unaligned(sigmoid + i);
    if (loss != nullptr) value.store_unaligned(loss + i);
    block_sum += value;
  }
  return xsimd::hadd(block_sum);
}

}  // namespace

// The blocks of a large input run on all threads; the scalar tail uses the same formulas
// (stable_math.hpp).
double bce_with_logits(const float* l, const float* y, float* loss, float* sigmoid, std::size_t n) {
  const std::size_t vectors = n / kLanes, blocks = (vectors + kBlockVectors - 1) / kBlockVectors;
  const int threads = n >= kMinParallelElements ? num_threads() : 1;
  double total = 0.0;
  for (std::size_t first = 0; first < blocks; first += kRoundBlocks) {
    const std::size_t count = std::min(kRoundBlocks, blocks - first);
    std::array<float, kRoundBlocks> sums;
    const auto run = [&](int part) {  // blocks [count * part / threads, count * (part + 1) / threads)
      const std::size_t b0 = first + count * static_cast<std::size_t>(part) / static_cast<std::size_t>(threads);
      const std::size_t b1 = first + count * static_cast<std::size_t>(part + 1) / static_cast<std::size_t>(threads);
      for (std::size_t b = b0; b < b1; ++b)
        sums[b - first] = bce_block(l, y, loss, sigmoid, b * kBlockVectors, std::min(vectors, (b + 1) * kBlockVectors));
    };
    if (threads > 1)
      parallel_run(threads, run);
    else
      run(0);
    for (std::size_t b = 0; b < count; ++b) total += sums[b];
  }
  for (std::size_t i = vectors * kLanes; i < n; ++i) {
    const float value = stable::softplus(l[i]) - l[i] * y[i];
    sigmoid[i] = stable::sigmoid(l[i]);
    if (loss != nullptr) loss[i] = value;
    total += value;
  }
  return total;
}

void sigmoid(const float* x, float* y, std::size_t n) {
  const std::size_t vectors = n / kLanes;
  parallel_for(vectors, kMinParallelElements / kLanes, [x, y](std::size_t v0, std::size_t v1) {
    for (std::size_t i = v0 * kLanes; i < v1 * kLanes; i += kLanes) {
      const B v = B::load_unaligned(x + i);
      sigmoid_from_exp(v, xsimd::exp(-xsimd::abs(v))).store_unaligned(y + i);
    }
  });
  for (std::size_t i = vectors * kLanes; i < n; ++i) y[i] = stable::sigmoid(x[i]);
}

}  // namespace ag::vec
