// The data movement under the convolution ops: im2col, col2im, and the block transposes
// between images [B, C, P] and the channel-major form [C, n P] of a run of n of them.
//
// A convolution is a GEMM once every kernel window is laid out as a column (im2col):
//   col[(c, i, j), (b, oh, ow)] = image[b, c, oh*sh - ph + i*dh, ow*sw - pw + j*dw]  (0 outside)
// so the columns of n images form [C*kh*kw, n*oh*ow], one row per kernel tap and one column per
// output position. Then conv2d is the GEMM W[O, C*kh*kw] col, and col2im (the adjoint: each
// column entry added back into the pixel it came from) gives the input's gradient and the
// transposed convolution.
//
// Both go through each image plane's stride phases (conv.cpp), so they copy and add whole
// vectors. The ops (autograd/ops/conv.cpp) run these a chunk of a few images at a time, so the
// columns of a chunk are still in the core's L2 cache when the GEMM reads them, and the
// working memory does not grow with the batch. Each function here works on the images
// [first, first + count) on the calling thread; the ops share the chunks out between the
// threads.
#pragma once

#include <cstddef>

namespace ag {

/// The geometry of one im2col: the image side [B, C, H, W], the kernel, and the kernel's
/// positions (out_h x out_w). The positions are given, not derived, so a transposed
/// convolution can use the same layout with its input's height and width.
struct ConvGeometry {
  std::size_t batch, channels, height, width;
  std::size_t kernel_h, kernel_w;
  std::size_t stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;
  std::size_t out_h, out_w;

  std::size_t col_rows() const { return channels * kernel_h * kernel_w; }
  std::size_t positions() const { return out_h * out_w; }
};

/// Floats of working memory (`work`) im2col needs for geometry g: one plane split
/// into its stride phases. The caller owns it, so it is sized once with the op's other buffers
/// (a buffer kept per thread would grow whenever a thread first met a larger layer, which
/// depends on which thread runs which part: an allocation in a later step).
std::size_t conv_work_floats(const ConvGeometry& g);
/// col [C*kh*kw, count*oh*ow] = the windows of images [first, first + count) (overwritten;
/// zero where a tap is padding).
void im2col(const ConvGeometry& g, const float* image, std::size_t first, std::size_t count, float* col,
            float* work);
/// The transposed direction fused with its GEMM: images [first, first + count) of image
/// [B, C, H, W] = their values (accumulate) or bias[c] (0 if bias is null), plus
/// col2im(Wᵀ X'), then max(that, 0) with `relu`, where X' [m, count P] are the count images
/// src points at (src [count, m, P], P = g.positions())
/// and Wᵀ [C kh kw, m] was packed by col2im_gemm_pack. The columns Wᵀ X' are never written out:
/// each tile the GEMM's micro-kernel computes is added straight into the pixels it belongs to
/// (conv2d's input gradient, conv_transpose2d's output). The sums are those of gemm followed
/// by col2im one column at a time, so are the bits: every product over m in one block, each pixel getting its
/// taps in tap order.
void col2im_gemm(const ConvGeometry& g, std::size_t m, const float* packed_wt, const float* src, std::size_t first,
                 std::size_t count, const float* bias, bool accumulate, bool relu, float* image, float* work);
/// Floats of working memory (`work`) col2im_gemm needs for a chunk of `count` images.
std::size_t col2im_gemm_work_floats(const ConvGeometry& g, std::size_t m, std::size_t count);
/// Floats col2im_gemm_pack writes for geometry g and m.
std::size_t col2im_gemm_weight_floats(const ConvGeometry& g, std::size_t m);
/// packed = Wᵀ for W [m, C kh kw], in the micro-kernel's row panels.
void col2im_gemm_pack(const ConvGeometry& g, std::size_t m, const float* w, float* packed);

/// dst [C, count*P] = images [first, first + count) of src [B, C, P], channel-major; with
/// relu_out (not null: the output of a ReLU, [B, C, P]) the gradient before that ReLU, as
/// relu_grad computes it.
void gather_channel_major(const float* src, const float* relu_out, std::size_t channels, std::size_t positions,
                          std::size_t first, std::size_t count, float* dst);
/// The same for channels [c0, c1) only: dst [c1 - c0, count*P].
void gather_channel_major(const float* src, const float* relu_out, std::size_t channels, std::size_t c0,
                          std::size_t c1, std::size_t positions, std::size_t first, std::size_t count, float* dst);
/// images [first, first + count) of dst [B, C, P] = src [C, count*P] (+ bias[c] if bias is not
/// null), or += with accumulate; with relu (not with accumulate), max(that, 0).
void scatter_channel_major(const float* src, std::size_t channels, std::size_t positions, std::size_t first,
                           std::size_t count, const float* bias, bool accumulate, bool relu, float* dst);

/// dst [count, n] = the gradient before a ReLU of images [first, first + count) of grad
/// [B, n], given the ReLU's output y [B, n]: y <= 0 ? 0 : 0 + grad, as relu's backward computes
/// it (so a convolution with a fused ReLU gets the bits of the two ops).
void relu_grad(const float* grad, const float* y, std::size_t n, std::size_t first, std::size_t count, float* dst);

}  // namespace ag
