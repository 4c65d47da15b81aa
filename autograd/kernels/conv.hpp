// The data movement under the convolution ops: im2col, col2im, and the block transposes
// between a batch [B, C, P] and its channel-major form [C, B*P].
//
// A convolution is a GEMM once every kernel window is laid out as a column (im2col):
//   col[(c, i, j), (b, oh, ow)] = image[b, c, oh*sh - ph + i*dh, ow*sw - pw + j*dw]  (0 outside)
// so col is [C*kh*kw, B*oh*ow], one row per kernel tap and one column per output position of
// every image of the batch. Then conv2d is one GEMM W[O, C*kh*kw] col, and col2im (the adjoint:
// each column entry added back into the pixel it came from) gives the input's gradient and the
// transposed convolution. Putting the whole batch in one GEMM keeps its N dimension large
// (B*oh*ow = 25,088 for the VAE's first layer at batch 128) where per-image GEMMs would be
// 196 columns wide, too small to split between the threads or to amortize the packing.
//
// Every function splits its work over images (parallel_run, each part a fixed range of images
// writing only its own outputs), so results do not depend on the thread count or on timing.
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
  std::size_t col_cols() const { return batch * out_h * out_w; }
};

/// col [C*kh*kw, B*oh*ow] = the image's windows (overwritten; zero where a tap is padding).
void im2col(const ConvGeometry& g, const float* image, float* col);
/// image [B, C, H, W] += col scattered back to the pixels its entries came from.
void col2im_add(const ConvGeometry& g, const float* col, float* image);

/// dst [C, B*P] = src [B, C, P] with the first two dimensions swapped.
void to_channel_major(const float* src, std::size_t batch, std::size_t channels, std::size_t positions,
                      float* dst);
/// dst [B, C, P] += src [C, B*P] with the first two dimensions swapped back.
void add_from_channel_major(const float* src, std::size_t batch, std::size_t channels, std::size_t positions,
                            float* dst);

}  // namespace ag
