// A loop of nothing but vector fused multiply-adds, on every thread of ag::parallel_run's pool.
//
// One FMA depends on the previous one in its chain, so a single chain runs at the instruction's
// latency (4 cycles on Zen), not its throughput (2 per cycle on Zen 3 and 4). kChains
// independent accumulators cover latency x throughput = 8 in flight with room to spare, and fit
// the 16 vector registers of AVX2 beside the two operands. The vector is xsimd's widest for the
// build (-march=native): 8 floats with AVX2, 16 with AVX-512.
#include "bench/fma_peak.hpp"

#include <algorithm>
#include <array>
#include <chrono>

#include <xsimd/xsimd.hpp>

#include "autograd/kernels/parallel.hpp"

namespace bench {

FmaPeak measure_fma_peak() {
  using Vec = xsimd::batch<float>;
  constexpr int kChains = 12;
  constexpr long kSteps = 1L << 20;  // about 3 ms per thread at 2 FMAs per cycle
  constexpr int kRounds = 30;
  const int threads = ag::num_threads();
  std::array<float, 64> sink{};  // per thread, so the loop's results are used
  double best = 1e30;
  for (int round = 0; round < kRounds; ++round) {
    const auto start = std::chrono::steady_clock::now();
    ag::parallel_run(threads, [&](int part) {
      Vec acc[kChains];
      for (int c = 0; c < kChains; ++c) acc[c] = Vec(static_cast<float>(c) * 1e-3F);
      // acc = acc * a + b converges to b / (1 - a) = 1: no overflow, no denormals.
      const Vec a(0.999F), b(0.001F);
      for (long s = 0; s < kSteps; ++s) {
#pragma GCC unroll 12
        for (int c = 0; c < kChains; ++c) acc[c] = xsimd::fma(acc[c], a, b);
      }
      Vec total = acc[0];
      for (int c = 1; c < kChains; ++c) total += acc[c];
      sink[static_cast<std::size_t>(part) % sink.size()] = xsimd::hadd(total);
    });
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  const double flops = 2.0 * kChains * static_cast<double>(Vec::size) * kSteps * threads;
  volatile float keep = sink[0];  // the sums must not be optimized away
  (void)keep;
  return {flops / best / 1e9, threads, static_cast<int>(Vec::size), xsimd::default_arch::name()};
}

}  // namespace bench
