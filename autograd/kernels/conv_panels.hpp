// im2col straight into the GEMM's panels (an implicit GEMM, gemm_panels.hpp): the columns of a
// chunk of images, col [K = C kh kw, n = count oh ow] (conv.hpp), or their transpose, are never
// written out as a matrix; gemm asks for one panel at a time and gets it gathered from the
// images. That saves im2col's writing the columns and gemm's reading and packing them again.
//
// The panels gather from a copy of the chunk's planes inside a zero border (pad_images), so a
// tap that falls on padding reads a zero like any other value: element (p, q) of col, for row
// p = (c, i, j) and column q = (b, oh, ow), is
//   padded[row_offset(p) + column_offset(q)],
//   row_offset(p) = c plane + i dh Wp + j dw,   column_offset(q) = b C plane + oh sh Wp + ow sw
// with Wp the padded width and plane = Hp Wp. The values, and so the GEMM's sums, are im2col's.
#pragma once

#include <cstddef>

#include "autograd/kernels/conv.hpp"
#include "autograd/kernels/gemm_panels.hpp"

namespace ag {

/// Floats pad_images writes for `count` images of geometry g.
std::size_t conv_padded_floats(const ConvGeometry& g, std::size_t count);

/// padded = the planes of images [first, first + count) of image [B, C, H, W], each inside the
/// zero border the kernel's windows reach into (every float of it written), laid out for the
/// ColumnPanels with the same `transposed`: col's panels read the planes split into their
/// stride phases, colᵀ's the planes as they are.
void pad_images(const ConvGeometry& g, const float* image, std::size_t first, std::size_t count, bool transposed,
                float* padded);

/// The columns of `count` images padded by pad_images (with the same `transposed`), as gemm's
/// op(B): col [K, count P], or with `transposed` colᵀ [count P, K]. Keep it alive while gemm
/// runs (source() points to it).
struct ColumnPanels {
  const ConvGeometry* g;
  const float* padded;
  std::size_t count;
  bool transposed;

  PanelSource source() const;
};

}  // namespace ag
