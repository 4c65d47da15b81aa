// Two GEMM paths of the convolution ops (autograd/ops/conv.cpp): which way a product takes its
// columns (the implicit GEMM or im2col's), and conv2d's product written straight into the
// images. (The others: col2im_gemm in conv.hpp, the gathered panels in conv_panels.hpp.)
#pragma once

#include <cstddef>

namespace ag {

/// Whether a conv op's GEMM with m rows, n columns and k steps gathers its op(B) panels from the
/// padded images (an implicit GEMM, conv_panels.hpp) rather than reading im2col's columns in
/// place. gemm reads the B of a product of few rows in place (gemm_packs_b), but a long K of
/// columns read in place streams from L2, row by row, once per row panel: with AVX-512 (8-row
/// panels, so 64 rows count as few) the VAE's 64-row products with k = 512 (encoder.2's
/// forward, decoder.5's input gradient) spent about 1 ms each of a 1-thread step in im2col and
/// the in-place GEMM more than with the gathered panels. A short K (the VAE's 1-channel layers,
/// k = 16) stays in place.
bool implicit_gemm(std::size_t m, std::size_t n, std::size_t k);

/// images [count, m, P] = W col (+ bias[c]; max(that, 0) with relu) for the packed W [m, k]
/// (gemm_pack_a) and the columns col [k, count P] read in place: one product per image, written
/// straight into the image ([m, P] is its channels' planes), then the bias added as the image
/// sits in L1. The values and sums are those of the product into a channel-major block
/// [m, count P] and scatter_channel_major (here run in place on each image, in L1), without the
/// block's trip through L2: the VAE's encoder.0 forward (k = 16), 0.61 -> 0.52 ms at batch 128,
/// 1 thread.
void products_into_images(std::size_t m, std::size_t positions, std::size_t k, const float* packed_w,
                          const float* col, std::size_t count, const float* bias, bool relu, float* images);

}  // namespace ag
