// A convolution of kernel 4 x 4, stride 2, padding 1 (conv2d, and conv_transpose2d as its
// adjoint) computed a chunk of 16 images at a time with the images in the AVX-512 vector lanes.
//
// Names follow conv2d's direction: the "big" side has C channels of H x W (conv2d's input,
// conv_transpose2d's output), the "small" side O channels of H/2 x W/2; the weight is
// [O, C, 4, 4] (conv2d's [out, in, kh, kw], which is conv_transpose2d's [in, out, kh, kw]). A
// chunk's planes are [channels, h + 2, w + 2, 16]: one 16-float vector per (channel, pixel),
// lane i holding image i, with a zero border of one pixel. The three products, each an indirect
// GEMM reading the planes in place (8 output channels x 3 positions a tile) or a sum of 6 x 4
// tiles of weights over them:
//   down (conv2d):            small[o, q] = sum over (c, kh, kw) of W[o, c, kh, kw] big_pad[c, 2 q + k - 1]
//   up (conv_transpose2d):    big[c, x] = the same sums' adjoint, run per stride phase of x (4
//                             taps a pixel, read from small_pad), every pixel written once
//   weight (the gradient of W): dW[o, c, kh, kw] = sum over q and images of small_pad[o, q] big_pad[c, 2 q + k - 1]
// conv2d: y = down(x) (+ bias, relu), dx = up(g), dW = weight(g, x); conv_transpose2d:
// y = up(x) (+ bias, relu), dx = down(g), dW = weight(x, g); g is the output's gradient through
// the fused ReLU's mask (y <= 0 ? 0 : 0 + dy), taken as it is moved into the lanes.
//
// The sums' order. down and up: over K in order, one fused multiply-add chain per output (K
// blocks continue the chain). The batch is cut into at most kSumParts parts, runs of
// neighbouring chunks fixed by the batch size; the threads take runs of neighbouring parts.
// dW: each image (lane) sums its positions in row order (a chain per weight), lane_sums16's
// tree adds the 16 images, the chunks add into their part's sum in chunk order, and the parts'
// sums are added in part order (onto dW, or onto zero for a fresh gradient). db: each lane sums
// its positions channel by channel, in float, chunk after chunk into its part's lanes; then per
// channel the parts in order, each part's 16 lanes in order. None of it depends on the thread
// count. A last chunk of fewer than 16 images fills the missing lanes with zero images: their
// gradient lanes are zero, so they add exact zeros to dW and db, and their outputs are dropped.
#pragma once

#include <cstddef>

namespace ag {

/// The sizes of a convolution the lanes kernels compute: `batch` images; big side big_c x
/// big_h x big_w, small side small_c x big_h/2 x big_w/2.
struct LanesConvShape {
  std::size_t batch, big_c, small_c, big_h, big_w;
};

/// Whether the kernels cover these sizes: an AVX-512 build, both channel counts multiples of
/// 8 (the GEMM tiles' 8 rows), big_h and big_w even and positive, a chunk's planes of either
/// side at most 2^22 floats (16 MB). (The kernel 4, stride 2,
/// padding 1, dilation 1, one group and no output padding are the caller's to check.)
bool conv_lanes_fits(std::size_t big_c, std::size_t small_c, std::size_t big_h, std::size_t big_w);

/// On by default; off makes the conv ops take their general path for every shape (for tests
/// comparing the two). Read as an op records its forward: the backward follows its forward.
void set_conv_lanes_enabled(bool enabled);
bool conv_lanes_enabled();

/// The threads a forward at this batch sizes its scratch for (one chunk buffer set each).
std::size_t conv_lanes_slots(std::size_t batch);
/// Floats of scratch for `slots` threads' buffers, the packed weight and the parts' sums; it
/// does not depend on the batch.
std::size_t conv_lanes_scratch_floats(const LanesConvShape& shape, std::size_t slots);
/// The slots a scratch of `floats` holds (the backward's, sized by its forward).
std::size_t conv_lanes_slots_in(const LanesConvShape& shape, std::size_t floats);

/// y = relu?(the convolution of x + bias): conv2d from the big side (input_big) or
/// conv_transpose2d from the small side; bias (one per output channel) may be null. scratch:
/// conv_lanes_scratch_floats(shape, slots) floats, 64-byte aligned.
void conv_lanes_forward(const LanesConvShape& shape, bool input_big, const float* x, const float* weight,
                        const float* bias, bool relu, float* y, float* scratch, std::size_t slots);

/// Where conv_lanes_backward writes: a null pointer for a gradient not needed; with `add` the
/// gradient is added to what is there, else written.
struct LanesConvGrads {
  float* dx = nullptr;
  bool dx_add = false;
  float* dw = nullptr;
  bool dw_add = false;
  float* db = nullptr;
  bool db_add = false;
};

/// The gradients of conv_lanes_forward given the output's gradient dy; relu_out is the forward's
/// output if it had the fused ReLU, else null.
void conv_lanes_backward(const LanesConvShape& shape, bool input_big, const float* x, const float* weight,
                         const float* relu_out, const float* dy, const LanesConvGrads& grads, float* scratch,
                         std::size_t slots);

}  // namespace ag
