// gemm with op(A) packed once and used for many products: a convolution multiplies its weight
// by the columns of one chunk of images after another, and packing the weight for each chunk
// again was a quarter of the packing those products did.
//
// gemm_pack_a lays op(A) out as gemm's kernel reads it (for the built-in gemm: per K block, MR-row
// panels; for OpenBLAS: a plain copy), and gemm_prepacked_a multiplies it on the calling thread:
// the same sums in the same order as gemm, so the results are the bits gemm gives.
#pragma once

#include <cstddef>

namespace ag {

/// Floats gemm_pack_a writes for an op(A) of m rows and k steps.
std::size_t gemm_packed_a_floats(std::size_t m, std::size_t k);

/// packed = op(A) [m, k] (A, or with trans_a Aᵀ for A stored [k, m]; leading dimension lda).
void gemm_pack_a(bool trans_a, std::size_t m, std::size_t k, const float* a, std::size_t lda, float* packed);

/// C[m, n] = beta C + op(A) op(B) with op(A) from gemm_pack_a (same m and k), on the calling thread.
void gemm_prepacked_a(std::size_t m, std::size_t n, std::size_t k, const float* packed_a, bool trans_b,
                      const float* b, std::size_t ldb, float beta, float* c, std::size_t ldc);

}  // namespace ag
