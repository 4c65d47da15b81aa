// ag::gemm against the plain-loop ag::gemm_reference: every transpose case, beta 0 and 1, shapes
// from 1x1x1 through the kernel's edges to the VAE's own, with 1 and 2 threads; plus
// determinism (repeated calls, and different thread counts, give bit-identical results).
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "autograd/kernels/gemm.hpp"
#include "autograd/kernels/gemm_packed.hpp"
#include "autograd/kernels/gemm_panels.hpp"
#include "autograd/kernels/parallel.hpp"

// Counts heap allocations through operator new (this test program only), to check that gemm
// reuses its packing buffers.
namespace {
std::atomic<long> g_allocations{0};

void* counted_alloc(std::size_t size, std::size_t align) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  const std::size_t rounded = (size + align - 1) / align * align;  // aligned_alloc wants this
  if (void* p = align > alignof(std::max_align_t) ? std::aligned_alloc(align, rounded)
                                                  : std::malloc(size ? size : 1))
    return p;
  throw std::bad_alloc();
}
}  // namespace

void* operator new(std::size_t size) { return counted_alloc(size, alignof(std::max_align_t)); }
void* operator new(std::size_t size, std::align_val_t align) {
  return counted_alloc(size, static_cast<std::size_t>(align));
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

namespace {

struct Shape {
  std::size_t m, n, k;
};

// Shapes that hit every edge of the blocking (partial register tiles in both directions,
// several K blocks, a ragged last K block, more than one B block) and the VAE's GEMMs.
const Shape kShapes[] = {
    {1, 1, 1},       {3, 4, 5},       {4, 3, 2},       {7, 1, 9},      {1, 50, 3},
    {17, 33, 65},    {8, 48, 16},     {9, 49, 17},     {33, 100, 1},   {64, 97, 400},
    {128, 400, 784}, {128, 784, 400}, {400, 784, 128}, {128, 20, 400}, {128, 400, 20},
    {20, 400, 128},  {40, 400, 128},  {96, 400, 784},  {784, 400, 96}, {96, 20, 400},
    {13, 900, 777},
};

struct Problem {
  bool trans_a, trans_b;
  std::size_t m, n, k, lda, ldb, ldc;
  std::vector<float> a, b, c0;  // c0: what C holds before the call

  Problem(bool ta, bool tb, Shape s, std::uint32_t seed, std::size_t pad = 0)
      : trans_a(ta), trans_b(tb), m(s.m), n(s.n), k(s.k) {
    // Leading dimensions larger than the rows (pad) check that gemm honours them.
    lda = (ta ? m : k) + pad;
    ldb = (tb ? k : n) + pad;
    ldc = n + pad;
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1.0F, 1.0F);
    a.resize((ta ? k : m) * lda);
    b.resize((tb ? n : k) * ldb);
    c0.resize(m * ldc);
    for (float& x : a) x = u(rng);
    for (float& x : b) x = u(rng);
    for (float& x : c0) x = u(rng);
  }

  std::vector<float> run(float beta, bool reference) const {
    std::vector<float> c = c0;
    auto* f = reference ? &ag::gemm_reference : &ag::gemm;
    f(trans_a, trans_b, m, n, k, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
    return c;
  }
};

// Both sum k products of numbers in [-1, 1] in different orders: allow for the rounding.
void check_close(const Problem& p, const std::vector<float>& got, const std::vector<float>& want) {
  const float tol = 1e-6F * static_cast<float>(p.k + 1) + 1e-5F;
  std::size_t bad = 0;
  for (std::size_t i = 0; i < got.size(); ++i)
    if (!(std::fabs(got[i] - want[i]) <= tol)) ++bad;  // also catches NaN
  CHECK_MESSAGE(bad == 0, bad, " of ", got.size(), " elements differ; trans_a=", p.trans_a,
                " trans_b=", p.trans_b, " m=", p.m, " n=", p.n, " k=", p.k);
}

// Restores the default thread count when a test ends, even if it fails.
struct ThreadCount {
  explicit ThreadCount(int n) { ag::set_num_threads(n); }
  ~ThreadCount() { ag::set_num_threads(0); }
};

}  // namespace

TEST_CASE("gemm matches the reference: all transposes, beta 0 and 1, 1 and 2 threads") {
  for (const int threads : {1, 2}) {
    ThreadCount count(threads);
    std::uint32_t seed = 1;
    for (const Shape s : kShapes)
      for (const bool ta : {false, true})
        for (const bool tb : {false, true}) {
          const Problem p(ta, tb, s, seed++);
          for (const float beta : {0.0F, 1.0F})
            check_close(p, p.run(beta, false), p.run(beta, true));
        }
  }
}

TEST_CASE("gemm honours leading dimensions larger than the rows") {
  for (const bool ta : {false, true})
    for (const bool tb : {false, true}) {
      const Problem p(ta, tb, {37, 53, 71}, 7, /*pad=*/5);
      const std::vector<float> got = p.run(1.0F, false);
      check_close(p, got, p.run(1.0F, true));
      for (std::size_t i = 0; i < p.m; ++i)  // the padding columns of C are left alone
        for (std::size_t j = p.n; j < p.ldc; ++j) CHECK(got[i * p.ldc + j] == p.c0[i * p.ldc + j]);
    }
}

TEST_CASE("gemm with a beta other than 0 and 1 scales C") {
  for (const bool ta : {false, true}) {
    const Problem p(ta, !ta, {29, 70, 50}, 5);
    check_close(p, p.run(0.5F, false), p.run(0.5F, true));
  }
}

TEST_CASE("gemm with beta 0 ignores what C held, and k = 0 leaves beta C") {
  Problem p(false, true, {9, 50, 30}, 3);
  for (float& x : p.c0) x = std::nanf("");
  check_close(p, p.run(0.0F, false), p.run(0.0F, true));

  const Problem empty(false, false, {5, 6, 0}, 4);
  CHECK(empty.run(1.0F, false) == empty.c0);
  for (const float x : empty.run(0.0F, false)) CHECK(x == 0.0F);
}

TEST_CASE("gemm is deterministic: the same bits on every run") {
  for (const int threads : {1, 2}) {
    ThreadCount count(threads);
    for (const Shape s : {Shape{128, 400, 784}, Shape{400, 784, 128}, Shape{96, 20, 400}})
      for (const bool ta : {false, true})
        for (const bool tb : {false, true}) {
          const Problem p(ta, tb, s, 11);
          const std::vector<float> first = p.run(1.0F, false);
          for (int run = 0; run < 2; ++run) CHECK(p.run(1.0F, false) == first);
        }
  }
}

TEST_CASE("built-in gemm: the same bits whatever the thread count") {
  // Each element of C is summed by one thread in the same order however C is cut between
  // threads. (A property of the built-in kernel; OpenBLAS, with -Dblas=openblas, does not
  // promise it.)
  if (std::string(ag::gemm_name()) != "built-in") return;
  for (const Shape s : {Shape{128, 400, 784}, Shape{784, 400, 128}, Shape{96, 20, 400}})
    for (const bool ta : {false, true})
      for (const bool tb : {false, true}) {
        const Problem p(ta, tb, s, 13);
        std::vector<float> one, two, three;
        {
          ThreadCount count(1);
          one = p.run(1.0F, false);
        }
        {
          ThreadCount count(2);
          two = p.run(1.0F, false);
        }
        {
          ThreadCount count(3);
          three = p.run(1.0F, false);
        }
        CHECK(two == one);
        CHECK(three == one);
      }
}

TEST_CASE("gemm does not allocate per call") {
  std::vector<float> c(784 * 784);
  const auto call = [&c](const Problem& p) {
    ag::gemm(p.trans_a, p.trans_b, p.m, p.n, p.k, p.a.data(), p.lda, p.b.data(), p.ldb, 0.0F,
             c.data(), p.ldc);
  };
  std::vector<Problem> problems;
  for (const Shape s : {Shape{128, 400, 784}, Shape{400, 784, 128}, Shape{96, 20, 400}})
    for (const bool ta : {false, true}) problems.emplace_back(ta, !ta, s, 17);

  SUBCASE("one thread: none at all once the buffers have grown") {
    ThreadCount count(1);
    for (const Problem& p : problems) call(p);
    const long before = g_allocations.load();
    for (int run = 0; run < 5; ++run)
      for (const Problem& p : problems) call(p);
    const long allocations = g_allocations.load() - before;
    CHECK(allocations == 0);
  }
  SUBCASE("two threads") {
    const Problem& p = problems[0];
    {
      ThreadCount count(1);
      call(p);  // the calling thread's buffers, sized for the whole product
    }
    ThreadCount count(2);
    call(p);  // starts the worker thread
    const long before = g_allocations.load();
    for (int run = 0; run < 20; ++run) call(p);
    // None, as a rule. But on a busy machine the worker may not have run yet (its part was
    // then done by the caller), and may grow its two buffers once, later.
    const long allocations = g_allocations.load() - before;
    CHECK(allocations <= 2);
  }
}

namespace {
// op(B) of a Problem handed out panel by panel, as a convolution's columns are (gemm_panels.hpp).
struct MatrixPanels {
  const Problem* p;

  static void pack(const void* source, std::size_t p0, std::size_t kc, std::size_t j0, std::size_t w,
                   std::size_t width, float* dst) {
    const Problem& q = *static_cast<const MatrixPanels*>(source)->p;
    for (std::size_t s = 0; s < kc; ++s)
      for (std::size_t j = 0; j < width; ++j)
        dst[s * width + j] = j >= w                 ? 0.0F
                             : q.trans_b ? q.b[(j0 + j) * q.ldb + p0 + s]
                                         : q.b[(p0 + s) * q.ldb + j0 + j];
  }
};
}  // namespace

TEST_CASE("gemm with op(B) packed by the caller, panel by panel: gemm's bits (built-in), or close (OpenBLAS)") {
  const bool built_in = std::string(ag::gemm_name()) == "built-in";
  for (const Shape s : kShapes)
    for (const bool ta : {false, true})
      for (const bool tb : {false, true})
        for (const float beta : {0.0F, 1.0F}) {
          const Problem p(ta, tb, s, 17, 1);
          const std::vector<float> want = p.run(beta, false);
          const MatrixPanels panels{&p};
          const ag::PanelSource source{&MatrixPanels::pack, &panels};
          std::vector<float> plain_b(p.k * p.n);
          std::vector<float> got = p.c0;
          ag::gemm_panels_b(ta, p.m, p.n, p.k, p.a.data(), p.lda, source, beta, got.data(), p.ldc, plain_b.data());
          std::vector<float> packed_a(ag::gemm_packed_a_floats(p.m, p.k));
          ag::gemm_pack_a(ta, p.m, p.k, p.a.data(), p.lda, packed_a.data());
          std::vector<float> got_prepacked = p.c0;
          ag::gemm_prepacked_a_panels_b(p.m, p.n, p.k, packed_a.data(), source, beta, got_prepacked.data(), p.ldc,
                                        plain_b.data());
          if (built_in) {
            CHECK(got == want);
            CHECK(got_prepacked == want);
          } else {
            check_close(p, got, want);
            check_close(p, got_prepacked, want);
          }
        }
}

TEST_CASE("gemm_linear_transposed: bias + X Wᵀ with gemm's bits (built-in), or close (OpenBLAS); with relu, max(that, 0)") {
  const bool built_in = std::string(ag::gemm_name()) == "built-in";
  // [batch, in] x [out, in]ᵀ: the VAE's two large layers at batches 32, 96 and 128, the conv
  // VAE's decoder.2 (3136 rows of W: several A blocks a thread, one packed B), and edges in every
  // direction (batch and out not multiples of the tile, one batch row, k = 0).
  const Shape shapes[] = {{32, 400, 784}, {128, 784, 400}, {96, 400, 784}, {128, 3136, 256}, {13, 45, 37}, {1, 9, 300}, {21, 70, 0}};
  for (const Shape s : shapes)
    for (const bool with_bias : {true, false})
      for (const bool relu : {false, true})
        for (const int threads : {1, 2, 3}) {
          ThreadCount count(threads);
          const Problem p(false, true, s, 21);  // a = X [m, k], b = W [n, k]
          std::vector<float> bias(s.n), want(s.m * s.n), got(s.m * s.n, -7.0F), yt(s.n * s.m);
          for (std::size_t j = 0; j < s.n; ++j) bias[j] = 0.25F * static_cast<float>(j % 7) - 0.5F;
          for (std::size_t i = 0; i < s.m; ++i)
            for (std::size_t j = 0; j < s.n; ++j) want[i * s.n + j] = with_bias ? bias[j] : 0.0F;
          ag::gemm(false, true, s.m, s.n, s.k, p.a.data(), s.k, p.b.data(), s.k, 1.0F, want.data(), s.n);
          if (relu)
            for (float& v : want) v = std::max(v, 0.0F);
          ag::gemm_linear_transposed(s.m, s.n, s.k, p.a.data(), p.b.data(), with_bias ? bias.data() : nullptr,
                                     yt.data(), got.data(), relu);
          if (built_in)
            CHECK_MESSAGE(got == want, "m=", s.m, " n=", s.n, " k=", s.k, " bias=", with_bias, " relu=", relu,
                          " threads=", threads);
          else
            check_close(p, got, want);
        }
}

TEST_CASE("gemm_linear_input_grad: A B with gemm's bits (built-in), or close (OpenBLAS)") {
  const bool built_in = std::string(ag::gemm_name()) == "built-in";
  // [batch, out] x [out, in]: a linear layer's dX = G W for the VAE's two large layers at
  // batches 32, 96 and 128, the conv VAE's two (3136 <-> 256; the first several B blocks a
  // thread), edges (rows and columns not multiples of the tile, one row, k = 0), and ragged
  // shapes large enough to be cut between the threads (a short last row panel, a part ending
  // in a partial vector).
  const Shape shapes[] = {{128, 400, 784}, {128, 784, 400}, {32, 400, 784}, {96, 784, 400}, {128, 3136, 256},
                          {128, 256, 3136}, {13, 45, 37}, {1, 9, 300}, {21, 70, 0}, {61, 403, 517},
                          {7, 1001, 300}};
  for (const Shape s : shapes)
    for (const int threads : {1, 2, 3}) {
      ThreadCount count(threads);
      const Problem p(false, false, s, 23);  // a = G [m, k], b = W [k, n]
      std::vector<float> want(s.m * s.n), got(s.m * s.n, -7.0F);
      ag::gemm(false, false, s.m, s.n, s.k, p.a.data(), s.k, p.b.data(), s.n, 0.0F, want.data(), s.n);
      ag::gemm_linear_input_grad(s.m, s.n, s.k, p.a.data(), p.b.data(), got.data());
      if (built_in)
        CHECK_MESSAGE(got == want, "m=", s.m, " n=", s.n, " k=", s.k, " threads=", threads);
      else
        check_close(p, got, want);
    }
}

TEST_CASE("built-in gemm: a last column panel of at most 4 columns has the bits of the same columns in a wider panel") {
  if (std::string(ag::gemm_name()) != "built-in") return;
  // The narrow last panel goes to narrow_kernel (AVX-512), the wide one to micro_kernel; padding
  // B with zero columns leaves every element's sum as it was, so the bits must match. Shapes
  // past the direct rule (m > 8 MR reads B packed, n > 2 NR reads A packed), the macro-kernel's
  // path where the narrow kernel runs.
  for (const int threads : {1, 2}) {
    const ThreadCount count(threads);
    for (const std::size_t n : {196, 194, 193, 292})
      for (const std::size_t m : {72, 96, 130})
        for (const float beta : {0.0F, 1.0F}) {
          const std::size_t k = 300, wide = (n + 47) / 48 * 48;
          const Problem p(false, false, {m, n, k}, 23);
          std::vector<float> b_wide(k * wide, 0.0F), c_wide(m * wide, 0.0F);
          for (std::size_t r = 0; r < k; ++r) std::copy_n(p.b.data() + r * n, n, b_wide.data() + r * wide);
          for (std::size_t i = 0; i < m; ++i) std::copy_n(p.c0.data() + i * n, n, c_wide.data() + i * wide);
          const std::vector<float> got = p.run(beta, false);
          ag::gemm(false, false, m, wide, k, p.a.data(), k, b_wide.data(), wide, beta, c_wide.data(), wide);
          std::size_t differ = 0;
          for (std::size_t i = 0; i < m; ++i)
            for (std::size_t j = 0; j < n; ++j) differ += got[i * n + j] != c_wide[i * wide + j];
          CHECK_MESSAGE(differ == 0, differ, " elements differ; m=", m, " n=", n, " beta=", beta, " threads=", threads);
        }
  }
}
