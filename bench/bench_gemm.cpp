// bench_gemm: ag::gemm against OpenBLAS on the GEMMs one VAE training step runs.
//
//   bench_gemm [--threads N] [--batch B] [--rounds R] [--median] [--pause-ms P] [--conv] [--linear]
//              [--only M,N,K]
//
// Per Linear layer with input x [B, in] and weight W [out, in] a step runs
//   forward  Y  = X Wᵀ     gemm(false, true,  B,   out, in)
//   backward dX += G W     gemm(false, false, B,   in,  out)
//   backward dW += Gᵀ X    gemm(true,  false, out, in,  B)
// for the layers of the 784-400-20 encoder (its head 400 -> 40 for mu | logvar, or two 400 -> 20
// heads) and the 20-400-784 decoder; with --conv, the Linear layers of the conv VAE instead
// (3136-256-20 and 20-256-3136, a third of that model's arithmetic). With --linear, the forward
// and input gradient of a layer whose weight Linear multiplies transposed (ops/matmul.cpp: a
// large weight and a batch shorter than its rows) run through the entry points Linear calls,
// gemm_linear_transposed (Yᵀ = W Xᵀ) and gemm_linear_input_grad (dX = G W cut by W's columns,
// overwriting dX), instead of plain gemm; OpenBLAS still computes the plain product. --only runs the cases of that
// shape alone (for perf). Both libraries run with the same thread count (default:
// ag::num_threads(), the hardware concurrency). Timings on a shared machine drift, so the two
// are measured back to back, shape by shape, and each one's best round is reported (other
// processes only ever slow a round down), or with --median its median round.
//
// OpenBLAS's idle threads keep spinning for 2^28 cycles (its default THREAD_TIMEOUT; over
// 0.1 s here) after a call, and would steal a core from ours: before timing ours, the bench
// sleeps --pause-ms (default 400) so they are asleep. Ours spin for at most half a millisecond.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "autograd/kernels/gemm.hpp"
#include "autograd/kernels/parallel.hpp"

#ifdef BENCH_WITH_OPENBLAS
#include <cblas.h>
#endif

namespace {

// How ours computes a case: plain gemm, or one of Linear's transposed entry points.
enum class Path { gemm, linear_forward, linear_input_grad };

struct Case {
  const char* what;
  bool trans_a, trans_b;
  std::size_t m, n, k;
  float beta;
  Path path = Path::gemm;
};

struct Operands {
  std::vector<float> a, b, c, ct;  // ct: Cᵀ, for the transposed forward
  std::size_t lda, ldb, ldc;

  explicit Operands(const Case& g) {
    std::mt19937 rng(42);
    std::uniform_real_distribution<float> u(-1.0F, 1.0F);
    a.resize(g.m * g.k);
    b.resize(g.k * g.n);
    c.assign(g.m * g.n, 0.0F);
    if (g.path == Path::linear_forward) ct.assign(g.m * g.n, 0.0F);
    for (float& x : a) x = u(rng);
    for (float& x : b) x = u(rng);
    lda = g.trans_a ? g.m : g.k;
    ldb = g.trans_b ? g.k : g.n;
    ldc = g.n;
  }
};

void run_ours(const Case& g, Operands& o) {
  switch (g.path) {
    case Path::gemm:
      ag::gemm(g.trans_a, g.trans_b, g.m, g.n, g.k, o.a.data(), o.lda, o.b.data(), o.ldb, g.beta, o.c.data(),
               o.ldc);
      break;
    case Path::linear_forward:  // a = X [m, k], b = W [n, k]
      ag::gemm_linear_transposed(g.m, g.n, g.k, o.a.data(), o.b.data(), nullptr, o.ct.data(), o.c.data());
      break;
    case Path::linear_input_grad:  // a = G [m, k], b = W [k, n]
      ag::gemm_linear_input_grad(g.m, g.n, g.k, o.a.data(), o.b.data(), o.c.data());
      break;
  }
}

#ifdef BENCH_WITH_OPENBLAS
void run_openblas(const Case& g, Operands& o) {
  const auto i = [](std::size_t x) { return static_cast<blasint>(x); };
  cblas_sgemm(CblasRowMajor, g.trans_a ? CblasTrans : CblasNoTrans,
              g.trans_b ? CblasTrans : CblasNoTrans, i(g.m), i(g.n), i(g.k), 1.0F, o.a.data(),
              i(o.lda), o.b.data(), i(o.ldb), g.beta, o.c.data(), i(o.ldc));
}
#endif

// Seconds per call of run(g, o), averaged over `reps` back-to-back calls.
template <class Run>
double seconds_per_call(Run run, const Case& g, Operands& o, int reps) {
  const auto start = std::chrono::steady_clock::now();
  for (int r = 0; r < reps; ++r) run(g, o);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / reps;
}

// The best or the median of the rounds' times.
double summary(std::vector<double> v, bool use_median) {
  std::sort(v.begin(), v.end());
  return use_median ? v[v.size() / 2] : v.front();
}

bool flag(int argc, char** argv, const char* name) {
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return true;
  return false;
}

int int_arg(int argc, char** argv, const char* name, int fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return std::atoi(argv[i + 1]);
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = int_arg(argc, argv, "--threads", ag::num_threads());
  const auto batch = static_cast<std::size_t>(int_arg(argc, argv, "--batch", 128));
  const int rounds = std::max(1, int_arg(argc, argv, "--rounds", 9));
  const int pause_ms = int_arg(argc, argv, "--pause-ms", 400);
  ag::set_num_threads(threads);
#ifdef BENCH_WITH_OPENBLAS
  openblas_set_num_threads(threads);
#endif

  // (in, out) of every distinct Linear layer shape in the VAE.
  const std::vector<std::pair<std::size_t, std::size_t>> layers =
      flag(argc, argv, "--conv")
          ? std::vector<std::pair<std::size_t, std::size_t>>{{3136, 256}, {256, 20}, {20, 256}, {256, 3136}}
          : std::vector<std::pair<std::size_t, std::size_t>>{{784, 400}, {400, 20}, {400, 40}, {20, 400}, {400, 784}};
  std::vector<Case> cases;
  for (const auto& [in, out] : layers) {
    // Linear's rule for the transposed products (linear_transposed in ops/matmul.cpp).
    const bool transposed = flag(argc, argv, "--linear") && in * out >= 65536 && batch < in;
    if (transposed) {
      cases.push_back({"fwd Yt=W.Xt ", false, true, batch, out, in, 0.0F, Path::linear_forward});
      cases.push_back({"bwd dX=G.W  ", false, false, batch, in, out, 0.0F, Path::linear_input_grad});
    } else {
      cases.push_back({"fwd  Y=X.Wt ", false, true, batch, out, in, 0.0F});
      cases.push_back({"bwd dX+=G.W ", false, false, batch, in, out, 1.0F});
    }
    cases.push_back({"bwd dW+=Gt.X", true, false, out, in, batch, 1.0F});
  }
  if (flag(argc, argv, "--conv")) {  // and its 32 -> 64 convolution, one chunk of 4 and of 16 images
    for (const std::size_t cols : {std::size_t{196}, std::size_t{784}}) {
      cases.push_back({"conv Y=W.col", false, false, 64, cols, 512, 0.0F});
      cases.push_back({"conv dW=G.ct", false, true, 64, 512, cols, 1.0F});
      cases.push_back({"conv dc=Wt.G", true, false, 512, cols, 64, 0.0F});
    }
  }

  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--only") == 0) {
      std::size_t m = 0, n = 0, k = 0;
      if (std::sscanf(argv[i + 1], "%zu,%zu,%zu", &m, &n, &k) != 3) {
        std::fprintf(stderr, "bench_gemm: --only wants M,N,K, not %s\n", argv[i + 1]);
        return 2;
      }
      std::erase_if(cases, [&](const Case& g) { return g.m != m || g.n != n || g.k != k; });
    }

  const bool use_median = flag(argc, argv, "--median");
  std::printf("GEMM GFLOP/s, %d thread(s), %s of %d rounds; ag::gemm is %s\n", threads,
              use_median ? "median" : "best", rounds, ag::gemm_name());
  std::printf("%-13s %5s %5s %5s %9s %9s %7s\n", "case", "m", "n", "k", "ag::gemm", "OpenBLAS",
              "ratio");
  double total_ours = 0, total_blas = 0;  // seconds for one pass over all cases
  for (const Case& g : cases) {
    Operands o(g);
    const double flops = 2.0 * static_cast<double>(g.m * g.n * g.k);
    // Enough calls per round for about 20 ms of work at 100 GFLOP/s, at least 5.
    const int reps = std::max(5, static_cast<int>(2e9 / flops));
    std::vector<double> ours, blas;
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
    run_ours(g, o);  // warm up: page in the buffers, grow the workspaces, wake the threads
    for (int r = 0; r < rounds; ++r) ours.push_back(seconds_per_call(run_ours, g, o, reps));
#ifdef BENCH_WITH_OPENBLAS
    run_openblas(g, o);
    for (int r = 0; r < rounds; ++r) blas.push_back(seconds_per_call(run_openblas, g, o, reps));
#endif
    const double t_ours = summary(ours, use_median);
    total_ours += t_ours;
    std::printf("%-13s %5zu %5zu %5zu %9.1f", g.what, g.m, g.n, g.k, flops / t_ours * 1e-9);
    if (!blas.empty()) {
      const double t_blas = summary(blas, use_median);
      total_blas += t_blas;
      std::printf(" %9.1f %7.2f", flops / t_blas * 1e-9, t_blas / t_ours);
    }
    std::printf("\n");
  }
  std::printf("all cases, one call each: ag::gemm %.1f us", total_ours * 1e6);
  if (total_blas > 0)
    std::printf(", OpenBLAS %.1f us, ratio %.2f", total_blas * 1e6, total_blas / total_ours);
  std::printf("\n");
#ifndef BENCH_WITH_OPENBLAS
  std::printf("(OpenBLAS not found at configure time: no comparison)\n");
#endif
  return 0;
}
