// Reference GEMM: the definition, in plain loops. Tests compare the fast gemm against it.
// The loops are ordered so the innermost one runs along contiguous memory where it can.
#include "autograd/kernels/gemm.hpp"

namespace ag {

void gemm_reference(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k,
                    const float* a, std::size_t lda, const float* b, std::size_t ldb, float beta,
                    float* c, std::size_t ldc) {
  for (std::size_t i = 0; i < m; ++i) {
    float* ci = c + i * ldc;
    for (std::size_t j = 0; j < n; ++j) ci[j] = beta == 0.0F ? 0.0F : beta * ci[j];
    if (!trans_b) {
      for (std::size_t p = 0; p < k; ++p) {
        const float aip = trans_a ? a[p * lda + i] : a[i * lda + p];
        const float* bp = b + p * ldb;
        for (std::size_t j = 0; j < n; ++j) ci[j] += aip * bp[j];
      }
    } else {
      for (std::size_t j = 0; j < n; ++j) {
        const float* bj = b + j * ldb;
        float s = 0.0F;
        for (std::size_t p = 0; p < k; ++p) s += (trans_a ? a[p * lda + i] : a[i * lda + p]) * bj[p];
        ci[j] += s;
      }
    }
  }
}

}  // namespace ag
