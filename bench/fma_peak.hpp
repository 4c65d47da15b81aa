// The machine's arithmetic peak, measured: the reference that bench_vae's epoch efficiency is
// a fraction of.
#pragma once

#include <string>

namespace bench {

struct FmaPeak {
  double gflops = 0;   // single precision, multiply and add counted as two operations
  int threads = 0;     // run on ag::parallel_run's pool, the threads training uses
  int lanes = 0;       // floats per vector register
  std::string isa;     // xsimd's name of the instruction set, e.g. "fma3+avx2", "avx512f"
};

/// Times a loop of independent fused multiply-adds on every thread and keeps the best of
/// several rounds.
FmaPeak measure_fma_peak();

}  // namespace bench
