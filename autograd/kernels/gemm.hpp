// The matrix-multiply kernel under matmul and linear.
//
// Row-major, single precision: C[m, n] = beta * C + op(A) op(B), where op(A) is A
// ([m, k], leading dimension lda) or, with trans_a, Aᵀ for A stored as [k, m]; likewise B.
// The three cases backward needs (A B, Aᵀ B, A Bᵀ) read their operands in place: no
// transpose is ever materialized. beta is 0 (overwrite) or 1 (accumulate a gradient); other
// values work too. beta = 0 ignores what C held (even NaN), as BLAS does.
//
// Two implementations sit behind gemm, chosen by the meson option `blas`: the built-in one
// (gemm.cpp: packed, register-blocked, multi-threaded with ag::set_num_threads; deterministic
// for a given thread count) or OpenBLAS's cblas_sgemm (gemm_openblas.cpp), for comparison.
#pragma once

#include <cstddef>

namespace ag {

void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k,
          const float* a, std::size_t lda, const float* b, std::size_t ldb, float beta, float* c,
          std::size_t ldc);

// Y[m, n] = bias + X Wᵀ for X [m, k] and W [n, k] (row-major, rows packed; bias one value per
// column of Y, or null for none): a linear layer's forward. Computed as Yᵀ = W Xᵀ into `yt`
// (room for n x m floats), then transposed into y: the kernel reads W in place, so W is never
// transposed into gemm's panels, only X and Y are. The bits are those of filling y's rows with
// the bias and adding gemm(false, true, m, n, k, x, k, w, k, 1, y, n): the same sums in the
// same order. It pays when Y holds fewer elements than W (m < k). With relu, y gets max(Y, 0)
// (std::max's bits: -0 and NaN pass through), in the same pass.
void gemm_linear_transposed(std::size_t m, std::size_t n, std::size_t k, const float* x, const float* w,
                            const float* bias, float* yt, float* y, bool relu = false);

// C[m, n] = A B for A [m, k] and B [k, n] (row-major, rows packed), overwriting C: a linear
// layer's input gradient dX = G W, with gemm(false, false, m, n, k, a, k, b, n, 0, c, n)'s bits.
// The threads cut C by columns: each packs only its share of B (gemm cut by rows packs all of B
// on every thread) and reads A in place. It pays when B holds more elements than C (m < k), as
// for gemm_linear_transposed. A product run on one thread is plain gemm.
void gemm_linear_input_grad(std::size_t m, std::size_t n, std::size_t k, const float* a, const float* b, float* c);

// Which implementation gemm is: "built-in" or "OpenBLAS".
const char* gemm_name();

// The same product in plain loops (gemm_reference.cpp): slow, obviously right; for tests.
void gemm_reference(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k,
                    const float* a, std::size_t lda, const float* b, std::size_t ldb, float beta,
                    float* c, std::size_t ldc);

}  // namespace ag
