// The conv VAE's 7 x 7 layers (encoder.2: conv2d 32->64, 14x14 -> 7x7; decoder.5: its
// transposed convolution 64->32, 7x7 -> 14x14; kernel 4, stride 2, padding 1, each followed by
// a ReLU) computed a chunk of 16 images at a time with the images in the vector lanes: a
// prototype, to measure whether that layout is worth a rewrite of the conv ops.
//
// Names follow conv2d's direction: the "big" side has C = 32 channels of 14 x 14 (encoder.2's
// input, decoder.5's output), the "small" side O = 64 channels of 7 x 7. A chunk's planes are
// [channels, h, w, 16] with a zero border (big: 16 x 16, small: 9 x 9) or without one. The three
// products, each an indirect GEMM or a sum of 6 x 4 tiles of weights over the planes:
//   down (conv2d forward):   small[o, q] = sum over (c, kh, kw) W[o, c, kh, kw] big_pad[c, 2 q + k - 1]
//   up (its adjoint, conv_transpose2d forward): big[c, x] = sum over (o, taps) of the same,
//     run per stride phase of x: 4 taps a pixel, read from small_pad, every pixel written once
//   weight (the gradient of W): dW[o, c, kh, kw] = sum over q, images small_pad[o, q] big_pad[c, 2 q + k - 1]
// encoder.2: y = relu(down(x) + b), dx = up(g), dW = weight(g, x); decoder.5: y = relu(up(x) + b),
// dx = down(g), dW = weight(x, g), with g the gradient before the ReLU.
//
// The weight gradient's sums: each image (lane) sums its 49 positions in row order (one chain
// of fused multiply-adds per weight), lane_sums16's tree sums the 16 images, the chunks add into
// their part's sum in chunk order (kSumParts parts) and the parts' sums are added in part order,
// whatever the thread count. Today's op sums 4-image chunks (196 columns a K block) into 8
// parts' sums: other bits. The bias gradient: each lane sums its positions, channel by channel,
// then the parts' lanes are added in order.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace lanes {

constexpr std::size_t kLanes = 16;                     // images a chunk (one per lane)
constexpr std::size_t kBigC = 32, kBig = 14, kBigPad = 16;  // big side: channels, side, padded side
constexpr std::size_t kSmallC = 64, kSmall = 7, kSmallPad = 9;
constexpr std::size_t kTaps = 16;                      // 4 x 4
constexpr std::size_t kBigPlane = kBig * kBig, kSmallPlane = kSmall * kSmall;

/// Where a chunk's time goes, in TSC ticks, per thread.
enum Part { transpose_in, down_gemm, up_gemm, weight_grad, transpose_out, kParts };
constexpr const char* kPartNames[kParts] = {"transpose in", "down GEMM (conv2d)", "up GEMM (adjoint)",
                                            "weight gradient", "transpose out"};

/// How `down` multiplies: indirect_kernel reading the planes in place, or plain vector copies
/// into a packed panel for gemm's own micro-kernel.
enum class DownKernel { indirect, packed };

struct Options {
  DownKernel down = DownKernel::indirect;
  std::size_t down_kc = 512;  // K block of down (taps of the 512)
  std::size_t up_kc = 256;    // K block of up (of the 256 = 64 channels x 4 taps)
  std::size_t weight_rows = 6;  // output channels a weight-gradient tile (4 or 6)
};

/// Offsets, position lists and packed weights, for a given weight W [64, 32, 4, 4] (conv2d's
/// [O, C, kh, kw], which is also conv_transpose2d's [in, out, kh, kw] for decoder.5).
struct Plan {
  Options options;
  std::vector<std::int32_t> down_off;  // [512] tap (c, kh, kw) -> offset in big_pad
  std::vector<std::int32_t> down_base;  // [49] output position -> its window's corner in big_pad
  std::vector<std::int32_t> up_off;     // [256] (o, dh, dw) -> offset in small_pad from a pixel's base
  std::array<std::vector<std::int32_t>, 4> up_base, up_dst;  // per phase: 49 pixels' base in small_pad, in big_pad
  std::vector<std::int32_t> big_pad_off, small_pad_off;      // NCHW index of a chunk image -> padded plane offset
  std::vector<float> down_a;                     // W as 8 row panels [512][8]
  std::array<std::vector<float>, 4> up_a;        // per phase: W's taps of that phase, 4 row panels [256][8]
};
Plan make_plan(const float* w, const Options& options);

/// One thread's chunk buffers (64-byte aligned) and its time by part.
struct Buffers {
  float* big_pad;     // [32, 16, 16, 16], border zero (also the adjoint's output: its interior)
  float* small_pad;   // [64, 9, 9, 16], border zero
  float* small;       // [64, 49, 16]
  float* packed_b;    // [512][48] (DownKernel::packed)
  std::uint64_t ticks[kParts];
};
Buffers make_buffers();
void free_buffers(Buffers& b);

/// The weight and bias gradients are summed per part of the batch (a run of chunks; the cut
/// depends on the batch size only), so their bits do not depend on the thread count.
constexpr std::size_t kSumParts = 4;

/// A slot of chunk buffers per thread, and each part's gradient sums.
struct Workspace {
  std::vector<Buffers> slots;
  float* part_dw = nullptr;        // [kSumParts][64, 512]
  float* part_db_lanes = nullptr;  // [kSumParts][64][16]
};
Workspace make_workspace(int threads);
void free_workspace(Workspace& ws);

enum class Layer { encoder2, decoder5 };

/// The layer over a batch of `batch` images (a multiple of 16) on ws.slots.size() threads:
/// y = relu(the convolution of x + bias), bias expanded to one float per output (channel, position).
void forward(const Plan& plan, Layer layer, const float* x, const float* bias, std::size_t batch, float* y,
             Workspace& ws);
/// dx, dW and db of forward, given its output y and dy.
void backward(const Plan& plan, Layer layer, const float* x, const float* y, const float* dy, std::size_t batch,
              float* dx, float* dw, float* db, Workspace& ws);

/// The three products alone, `calls` times each on one chunk's buffers as they are (in L2):
/// TSC ticks of down, up and the weight gradient. The kernels' speed without the transposes.
void hot_products(const Plan& plan, Workspace& ws, int calls, std::uint64_t ticks[3]);

/// The big side's transposes alone: `calls` times the first 16 images of x [B, 32, 14, 14]
/// into the big planes and back out into x (the same values), in L2: TSC ticks.
std::uint64_t hot_transposes(const Plan& plan, Workspace& ws, const float* x, int calls);

}  // namespace lanes
