// col2im_gemm (conv.hpp) one output stride phase at a time: the transposed direction of a
// strided convolution (conv_transpose2d's output, conv2d's input gradient) without col2im.
//
// With stride s, output pixel Y = oh s - pad + i gets taps i ≡ (Y + pad) mod s only, so the
// pixels of one stride phase (Y ≡ py mod s, Y = t s + py) are a plain stride-1 convolution of
// X' with the kernel's taps of that residue: Y(t) = Σ_u W[i = r + s u] X'(t + e - u), with
// r = (py + pad) mod s and e = (py + pad - r) / s (the same along the width). Each phase is one
// GEMM, Y_phase [C, n] = W_phase [C, m taps] cols [m taps, n], whose columns are gathered from
// X' held once in zero-bordered planes, one per horizontal tap offset (TapTableColumns), so a
// run of positions is a run of floats; the phases are then interleaved into the pixels.
// Against col2im (a GEMM over m into the columns [C kh kw, n], then each column added into its
// pixel): no adds of the columns into the pixels, and a K of m taps instead of m. The VAE's
// 64 <-> 32, 7x7 <-> 14x14 layers: 4 phases of 2 x 2 taps, K = 256 instead of 64.
//
// The sums differ from col2im's (all of a pixel's taps in one GEMM sum, not tap after tap), so
// the bits do. For dilation 1, an image size divisible by the stride, at least one tap per
// phase, and C at least one row panel of the GEMM (a 1-channel output would fill an eighth of
// it); otherwise col2im_gemm keeps its own way.
#pragma once

#include <cstddef>

#include "autograd/kernels/conv.hpp"

namespace ag::conv_by_phases {

/// Whether col2im_gemm of geometry g with m channels of X' goes by phases.
bool applies(const ConvGeometry& g, std::size_t m);
/// Floats pack writes (where applies).
std::size_t weight_floats(const ConvGeometry& g, std::size_t m);
/// Floats of working memory run needs for count images.
std::size_t work_floats(const ConvGeometry& g, std::size_t m, std::size_t count);
/// packed = each phase's W_phase [C, m taps], packed for the GEMM, from W [m, C kh kw].
void pack(const ConvGeometry& g, std::size_t m, const float* w, float* packed);
/// col2im_gemm's contract (conv.hpp), by phases: images [first, first + count) of image =
/// their values (accumulate) or bias[c] (0 if null), plus the transposed convolution of the
/// count images src points at ([count, m, out_h out_w]); then max(that, 0) with relu.
void run(const ConvGeometry& g, std::size_t m, const float* packed, const float* src, std::size_t first,
         std::size_t count, const float* bias, bool accumulate, bool relu, float* image, float* work);

}  // namespace ag::conv_by_phases
