// gemm forwarded to OpenBLAS (meson configure -Dblas=openblas), to compare against the
// built-in kernel inside the whole program. Same contract as gemm.cpp; the thread count
// follows ag::num_threads().
#include <cblas.h>

#include <algorithm>
#include <cstddef>

#include "autograd/kernels/gemm.hpp"
#include "autograd/kernels/gemm_packed.hpp"
#include "autograd/kernels/gemm_panels.hpp"
#include "autograd/kernels/parallel.hpp"

namespace ag {

const char* gemm_name() { return "OpenBLAS"; }

void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, const float* a,
          std::size_t lda, const float* b, std::size_t ldb, float beta, float* c, std::size_t ldc) {
  if (m == 0 || n == 0) return;
  // OpenBLAS keeps its own thread count; follow ours when it changes.
  static int threads = 0;
  if (threads != num_threads()) {
    threads = num_threads();
    openblas_set_num_threads(threads);
  }
  const auto i = [](std::size_t x) { return static_cast<blasint>(x); };
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, i(m), i(n), i(k), 1.0F, a, i(lda), b, i(ldb),
              beta, c, i(ldc));
}

// OpenBLAS packs W itself: the plain product into y (yt unused).
void gemm_linear_transposed(std::size_t m, std::size_t n, std::size_t k, const float* x, const float* w,
                            const float* bias, float* /*yt*/, float* y, bool relu) {
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) y[i * n + j] = bias ? bias[j] : 0.0F;
  gemm(false, true, m, n, k, x, k, w, k, 1.0F, y, n);
  if (relu)
    for (std::size_t i = 0; i < m * n; ++i) y[i] = std::max(y[i], 0.0F);
}

// The plain product.
void gemm_linear_input_grad(std::size_t m, std::size_t n, std::size_t k, const float* a, const float* b, float* c) {
  gemm(false, false, m, n, k, a, k, b, n, 0.0F, c, n);
}

// OpenBLAS packs inside each call: the "packed" op(A) is a plain row-major copy [m, k].
std::size_t gemm_packed_a_floats(std::size_t m, std::size_t k) { return m * k; }

void gemm_pack_a(bool trans_a, std::size_t m, std::size_t k, const float* a, std::size_t lda, float* packed) {
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t p = 0; p < k; ++p) packed[i * k + p] = trans_a ? a[p * lda + i] : a[i * lda + p];
}

void gemm_prepacked_a(std::size_t m, std::size_t n, std::size_t k, const float* packed_a, bool trans_b,
                      const float* b, std::size_t ldb, float beta, float* c, std::size_t ldc) {
  gemm(false, trans_b, m, n, k, packed_a, k, b, ldb, beta, c, ldc);
}

bool gemm_packs_b(std::size_t /*m*/, std::size_t /*n*/) { return true; }

// op(B) from its panels: written whole, as one panel as wide as it, into plain_b [k, n].
void gemm_prepacked_a_panels_b(std::size_t m, std::size_t n, std::size_t k, const float* packed_a,
                               const PanelSource& b, float beta, float* c, std::size_t ldc, float* plain_b) {
  if (m == 0 || n == 0) return;
  b.pack(b.source, 0, k, 0, n, n, plain_b);
  gemm(false, false, m, n, k, packed_a, k, plain_b, n, beta, c, ldc);
}

void gemm_panels_b(bool trans_a, std::size_t m, std::size_t n, std::size_t k, const float* a, std::size_t lda,
                   const PanelSource& b, float beta, float* c, std::size_t ldc, float* plain_b) {
  if (m == 0 || n == 0) return;
  b.pack(b.source, 0, k, 0, n, n, plain_b);
  gemm(trans_a, false, m, n, k, a, lda, plain_b, n, beta, c, ldc);
}

}  // namespace ag
