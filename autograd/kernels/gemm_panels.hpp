// gemm with op(B) packed by the caller, panel by panel: an implicit GEMM. A convolution's
// op(B) is its im2col columns (or their transpose); rather than writing them out as a matrix
// for gemm to read and pack again, the convolution writes each panel straight from the image
// (autograd/kernels/conv_panels.hpp), in the order the micro-kernel reads it.
//
// The blocking, the kernel and so the order of every sum are gemm's: given the same values, the
// result has the bits gemm gives for op(B) held as a matrix. Both run on the calling thread.
#pragma once

#include <cstddef>

namespace ag {

/// Writes one panel of op(B) [k, n]: steps [p0, p0 + kc) of columns [j0, j0 + w) into
///   dst[p * width + j] = op(B)(p0 + p, j0 + j)   for p < kc, j < w;  0 for w <= j < width.
/// width is a multiple of the SIMD width and dst is aligned to it. (OpenBLAS's gemm asks for the
/// whole of op(B) as one panel: width = w = n, dst then a row-major [k, n] matrix.)
struct PanelSource {
  void (*pack)(const void* source, std::size_t p0, std::size_t kc, std::size_t j0, std::size_t w,
               std::size_t width, float* dst);
  const void* source;
};

/// Whether gemm packs op(B) of a product with m rows and n columns. If not (a product of few
/// rows reads B in place), handing it a matrix costs nothing beyond writing it, and is faster
/// than having its panels gathered.
bool gemm_packs_b(std::size_t m, std::size_t n);

/// C[m, n] = beta C + op(A) op(B), op(A) from gemm_pack_a (gemm_packed.hpp), op(B) from `b`.
/// plain_b: room for k x n floats, used only by the OpenBLAS build (to hold op(B) whole).
void gemm_prepacked_a_panels_b(std::size_t m, std::size_t n, std::size_t k, const float* packed_a,
                               const PanelSource& b, float beta, float* c, std::size_t ldc, float* plain_b);

/// C[m, n] = beta C + op(A) op(B), op(A) as in gemm (A [m, k], or with trans_a Aᵀ for A stored
/// [k, m]; leading dimension lda), op(B) from `b`; plain_b as above.
void gemm_panels_b(bool trans_a, std::size_t m, std::size_t n, std::size_t k, const float* a, std::size_t lda,
                   const PanelSource& b, float beta, float* c, std::size_t ldc, float* plain_b);

}  // namespace ag
