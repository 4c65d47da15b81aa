// The matrix-multiply kernel under matmul and linear.
//
// Row-major, single precision: C[m, n] = beta * C + op(A) op(B), where op(A) is A
// ([m, k], leading dimension lda) or, with trans_a, Aᵀ for A stored as [k, m]; likewise B.
// The three cases backward needs (A B, Aᵀ B, A Bᵀ) read their operands in place: no
// transpose is ever materialized. beta is 0 (overwrite) or 1 (accumulate a gradient).
#pragma once

#include <cstddef>

namespace ag {

void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k,
          const float* a, std::size_t lda, const float* b, std::size_t ldb, float beta, float* c,
          std::size_t ldc);

}  // namespace ag
