// conv2d and conv_transpose2d on NCHW tensors, as GEMMs over im2col columns
// (autograd/kernels/conv.hpp), a chunk of a few images at a time. For a chunk, with
// col = im2col(x) [K = C kh kw, n = images x Ho Wo] and the output and its gradient in
// channel-major form Y', G' [O, n]:
//   conv2d            Y' = W col               dW += G' colᵀ   dcol = Wᵀ G', dx += col2im(dcol)
//   conv_transpose2d  y = col2im(Wᵀ X')        dcol = im2col(G)   dX' = W dcol,  dW += X' dcolᵀ
// (for the transposed convolution the weight is [C, O kh kw] and im2col runs on its output).
// Where gemm would pack col or colᵀ (as op(B)) anyway, the columns are never written out: the
// GEMM gathers each panel from the chunk's images (an implicit GEMM, conv_panels.hpp), with
// the same values and so the same sums.
// The bias gradient is the sum of G over the batch and the positions, in double; a first
// layer's (no input gradient) is taken in the same pass as its weight's (first_layer_backward).
// With the `relu` option the op is the convolution followed by relu: the output is max(y, 0),
// written as the op writes y, and the backward takes G = the ReLU's backward (relu_grad) of
// the node's gradient, chunk by chunk into the part's scratch, so the ReLU costs no pass over
// the batch's activations of its own. The bits are those of the two ops.
//
// Chunks: the batch is cut into a fixed number of parts (kParts, fewer for a small batch),
// which the threads share out; each part runs its images a chunk at a time, the chunk sized so
// its columns stay in L2 between the im2col and the GEMM that reads them. The weight gradient
// is summed per part, chunk after chunk, and the parts' sums are added in part order: the cut
// depends on the shapes only, so the bits do not depend on the thread count or on timing.
// The weight, the one GEMM operand every chunk shares, is packed for the GEMM once per call
// (gemm_packed.hpp), not once per chunk.
//
// Buffers: each part's weight-gradient sum, the chunk buffers (columns, channel-major block,
// padded images: one set per thread, Chunks::run) and the packed weight live in the node's
// `scratch` array, sized by the shapes of one chunk (not by the
// batch), which keeps its size from step to step, so a training loop allocates nothing once
// the tape has seen the shapes, and an evaluation at a large batch needs no more memory than
// training. The backward rule recomputes what it needs (an im2col or a transpose costs about
// 1/O of the GEMM) instead of trusting the forward's leftovers, so a second backward over the
// same record is still right.
//
// The VAE's stride-2 layers (kernel 4, stride 2, padding 1; channels multiples of 8) take
// another path on an AVX-512 build: a chunk of 16 images in the vector lanes
// (kernels/conv_lanes.hpp: its layout and its sums' order), every batch of such a layer, a last
// short chunk filled with zero images. The forward records its choice in the node's attributes
// and the backward follows it.
#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdint>
#include <stdexcept>

#include <fmt/format.h>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "autograd/kernels/conv.hpp"
#include "autograd/kernels/conv_gemm.hpp"
#include "autograd/kernels/conv_lanes.hpp"
#include "autograd/kernels/conv_panels.hpp"
#include "autograd/kernels/gemm.hpp"
#include "autograd/kernels/gemm_kernel.hpp"
#include "autograd/kernels/gemm_packed.hpp"
#include "autograd/kernels/gemm_panels.hpp"
#include "autograd/kernels/parallel.hpp"
#include "autograd/ops.hpp"
#include "autograd/ops/common.hpp"

namespace ag {
using detail::input;

namespace {

struct Dims4 {
  std::size_t b, c, h, w;
};

Dims4 dims4(const char* op, const char* what, Var v) {
  if (v.dim() != 4)
    throw ShapeError(fmt::format("{}: {} {} must have 4 dimensions", op, what, to_string(v.shape())));
  const Shape& s = v.shape();
  return {s[0], s[1], s[2], s[3]};
}

/// The one spatial size of a convolution's output: floor((in + 2 pad - dil (k - 1) - 1) / stride) + 1,
/// or 0 when the dilated kernel does not fit in the padded input.
std::size_t conv_out_size(std::size_t in, std::size_t k, std::size_t stride, std::size_t pad, std::size_t dil) {
  const std::size_t span = dil * (k - 1) + 1;
  if (in + 2 * pad < span) return 0;
  return (in + 2 * pad - span) / stride + 1;
}

// No input channel, or a kernel of no pixels, makes GEMMs over K = 0 rows of columns, which
// the weight packing divides by (SIGFPE); no output channel, GEMMs of M = 0 rows, which the
// chunking of images divides by. PyTorch refuses the first two.
void check_not_empty(const char* op, Var x, const Dims4& xd, Var weight, const Dims4& wd, std::size_t out_channels) {
  if (xd.c == 0) throw ShapeError(fmt::format("{}: input {} has no channels", op, to_string(x.shape())));
  if (out_channels == 0)
    throw ShapeError(fmt::format("{}: weight {} has no output channels", op, to_string(weight.shape())));
  if (wd.h == 0 || wd.w == 0)
    throw ShapeError(fmt::format("{}: weight {} has a kernel of no pixels", op, to_string(weight.shape())));
}

void check_positive(const char* op, const char* what, Size2 s) {
  if (s.h == 0 || s.w == 0) throw ShapeError(fmt::format("{}: {} ({}, {}) must be positive", op, what, s.h, s.w));
}

void check_bias(const char* op, Var bias, std::size_t out_channels) {
  if (bias.numel() != out_channels || bias.dim() > 2 || (bias.dim() == 2 && bias.rows() != 1))
    throw ShapeError(fmt::format("{}: bias {} must be [{}] (one value per output channel)", op,
                                 to_string(bias.shape()), out_channels));
}

#if defined(__AVX2__)
/// r[j] = lane j of every r[q] (an 8 x 8 transpose): rows of 8 channels' positions become
/// rows of 8 positions' channels.
inline void transpose8(__m256* r) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20), r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20), r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31), r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31), r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/// total[q] += value q of positions [0, whole) of 8 channels (channel q at grad + q positions,
/// whole a multiple of 8), position by position, as add_bias_grad's scalar loop adds them: each
/// block of 8 positions of the 8 channels is transposed, so one vector holds one position's 8
/// values and 2 vector adds in double do what 8 scalar ones did (0.22 -> 0.14 ms for the VAE's
/// 64 x 7 x 7 layer at batch 128; then it waits on memory).
template <bool Masked>
void add_eight_channels(const float* grad, const float* relu_out, std::size_t positions, std::size_t whole,
                        std::size_t ahead, double* total) {
  __m256d lo = _mm256_loadu_pd(total), hi = _mm256_loadu_pd(total + 4);
  const __m256 zero = _mm256_setzero_ps();
  for (std::size_t p = 0; p < whole; p += 8) {
    if (ahead != 0 && p % 16 == 0)
      for (std::size_t q = 0; q < 8; ++q) {
        _mm_prefetch(reinterpret_cast<const char*>(grad + ahead + q * positions + p), _MM_HINT_T0);
        if constexpr (Masked) _mm_prefetch(reinterpret_cast<const char*>(relu_out + ahead + q * positions + p), _MM_HINT_T0);
      }
    __m256 r[8];
    for (std::size_t q = 0; q < 8; ++q) {
      r[q] = _mm256_loadu_ps(grad + q * positions + p);
      if constexpr (Masked) {  // 0 + (y <= 0 ? 0 : g), the select as the scalar loop's bit mask
        const __m256 keep = _mm256_cmp_ps(_mm256_loadu_ps(relu_out + q * positions + p), zero, _CMP_NLE_UQ);
        r[q] = _mm256_add_ps(zero, _mm256_and_ps(r[q], keep));
      }
    }
    transpose8(r);
    for (std::size_t j = 0; j < 8; ++j) {
      lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(r[j])));
      hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(r[j], 1)));
    }
  }
  _mm256_storeu_pd(total, lo);
  _mm256_storeu_pd(total + 4, hi);
}
#endif

// Channels summed side by side (one channel's sum is a chain of dependent adds, which alone
// would wait out each add's latency); on AVX2 they are add_eight_channels' two vectors.
constexpr std::size_t kSumGroup = 8;

/// total[q] += values [0, count) of n <= kSumGroup channels (channel q at grad + q stride), in
/// double, in order; with relu_out, of the gradient before that ReLU, y <= 0 ? 0 : 0 + g as
/// relu's backward computes it, the select as a bit mask (as a branch it mispredicted).
/// `ahead` (floats, 0 for none): where the next values to be summed lie, to prefetch them.
template <bool Masked>
void add_channel_sums(const float* grad, const float* relu_out, std::size_t n, std::size_t stride,
                      std::size_t count, [[maybe_unused]] std::size_t ahead, double* total) {
  const auto value = [&](std::size_t i) {
    if constexpr (!Masked) return grad[i];
    const std::uint32_t keep = relu_out[i] <= 0.0F ? 0U : 0xFFFFFFFFU;
    return 0.0F + std::bit_cast<float>(std::bit_cast<std::uint32_t>(grad[i]) & keep);
  };
  if (n < kSumGroup) {
    for (std::size_t q = 0; q < n; ++q)
      for (std::size_t p = 0; p < count; ++p) total[q] += value(q * stride + p);
    return;
  }
  std::size_t p = 0;
#if defined(__AVX2__)
  static_assert(kSumGroup == 8);
  p = count / 8 * 8;
  add_eight_channels<Masked>(grad, relu_out, stride, p, ahead, total);
#endif
  for (; p < count; ++p)
#pragma GCC unroll 8
    for (std::size_t q = 0; q < kSumGroup; ++q) total[q] += value(q * stride + p);
}

/// db[c] += the sum of grad [B, C, P] over the batch and the positions, in double, image by
/// image and position by position (add_channel_sums; with relu_out, before that ReLU). The
/// channels are shared out between the threads, kSumGroup at a time. The loads of the next
/// images' rows are prefetched: each image's rows of a group are short runs (784 bytes for
/// the VAE's 14 x 14 planes) a stride apart, which the hardware's prefetchers did not catch.
template <bool Masked>
void add_bias_grad(const float* grad, const float* relu_out, std::size_t batch, std::size_t channels,
                   std::size_t positions, float* db) {
  constexpr std::size_t kAhead = 2;  // images
  parallel_for(channels, 16, [&](std::size_t begin, std::size_t end) {
    for (std::size_t c0 = begin; c0 < end; c0 += kSumGroup) {
      const std::size_t n = std::min(kSumGroup, end - c0);
      double total[kSumGroup] = {};
      for (std::size_t b = 0; b < batch; ++b) {
        const std::size_t at = (b * channels + c0) * positions;
        const std::size_t ahead = b + kAhead < batch ? kAhead * channels * positions : 0;
        add_channel_sums<Masked>(grad + at, Masked ? relu_out + at : nullptr, n, positions, positions, ahead, total);
      }
      for (std::size_t q = 0; q < n; ++q) db[c0 + q] += static_cast<float>(total[q]);
    }
  });
}

// The batch is cut into at most this many parts: enough for the threads to share out evenly
// (they take unclaimed parts), few enough that the parts' weight-gradient sums stay small.
constexpr std::size_t kParts = 8;
// A chunk holds as many images as fit this many floats of columns and channel-major block
// together (512 KB: 4 images of the VAE's 32 -> 64 layer, 13 of its first). Measured on the
// VAE's layers (1 thread): from a quarter of this to seven times it the time hardly changed;
// chunks of one image were about 15% slower.
constexpr std::size_t kChunkFloats = 128 * 1024;

/// How a conv op cuts its batch, and where its buffers sit in the node's scratch: first each
/// part's weight-gradient sum `dw` [M, K] (M = the GEMM's other side: output channels of a
/// conv2d, input channels of a transposed one); then one set of a chunk's working buffers per
/// slot, the thread that runs chunks (Chunks::run): `col` [K, chunk P], `mat` [M, chunk P],
/// `work` (im2col's and col2im's, conv_work_floats), `padded` (the chunk's images in their zero
/// border, which the implicit GEMMs gather their columns from: conv_panels.hpp) and, for an op
/// with a fused ReLU, `grad` (the chunk's gradient before the ReLU: `out_floats` per image);
/// last the weight, packed once for all chunks as the GEMM's op(A) ([M, K] or [K, M]: room for
/// either).
struct Chunks {
  std::size_t batch, parts, slots, chunk, col_floats, mat_floats, dw_floats, work_floats, padded_floats, grad_floats,
      weight_floats;

  // At least two slots: first_layer_backward gives the VAE's 32-channel first layer to two
  // channel groups, each in a slot of its own, also at one thread.
  static constexpr std::size_t kMinSlots = 2;

  // out_floats: the floats of one image of the op's output if it has a fused ReLU, else 0
  Chunks(std::size_t batch_, std::size_t k, std::size_t m, std::size_t positions, const ConvGeometry& g,
         std::size_t out_floats)
      : batch(batch_),
        parts(std::min(batch_, kParts)),
        slots(std::min(parts, std::max(kMinSlots, static_cast<std::size_t>(std::max(num_threads(), 1))))),
        work_floats(conv_work_floats(g)) {
    chunk = std::max<std::size_t>(1, kChunkFloats / ((k + m) * positions));
    // the columns, or col2im_gemm's working memory where the op has no columns to hold
    col_floats = std::max(k * chunk * positions, col2im_gemm_work_floats(g, m, chunk));
    mat_floats = m * chunk * positions;
    dw_floats = m * k;
    padded_floats = conv_padded_floats(g, chunk);
    grad_floats = out_floats * chunk;
    if (padded_floats > std::size_t{INT32_MAX})  // the gathers' offsets are 32-bit
      throw ShapeError(fmt::format("conv: an image of {} x {} x {} is too large (over 2^31 floats padded)",
                                   g.channels, g.height, g.width));
    weight_floats = std::max({gemm_packed_a_floats(m, k), gemm_packed_a_floats(k, m), col2im_gemm_weight_floats(g, m)});
  }
  /// For a backward: the slots of the scratch its forward sized (the thread count may have
  /// changed in between, and the buffers' places follow from their number).
  void fit_slots(std::size_t scratch_size) {
    if (parts == 0) return;  // an empty batch: no chunks, no slots
    const std::size_t fixed = parts * dw_floats + weight_floats, each = slot_floats();
    if (each == 0 || scratch_size < fixed + each || (scratch_size - fixed) % each != 0)
      throw std::logic_error("conv: the node's scratch does not hold its forward's buffers");
    slots = (scratch_size - fixed) / each;
  }
  std::size_t slot_floats() const { return col_floats + mat_floats + work_floats + padded_floats + grad_floats; }
  // A smaller last batch may need fewer parts: the scratch then shrinks, keeping its capacity,
  // and grows back without allocating.
  std::size_t scratch_floats() const { return parts * dw_floats + slots * slot_floats() + weight_floats; }
  float* dw(float* scratch, std::size_t part) const { return scratch + part * dw_floats; }
  float* col(float* scratch, std::size_t slot) const { return scratch + parts * dw_floats + slot * slot_floats(); }
  float* mat(float* scratch, std::size_t slot) const { return col(scratch, slot) + col_floats; }
  float* work(float* scratch, std::size_t slot) const { return mat(scratch, slot) + mat_floats; }
  float* padded(float* scratch, std::size_t slot) const { return work(scratch, slot) + work_floats; }
  float* grad(float* scratch, std::size_t slot) const { return padded(scratch, slot) + padded_floats; }
  float* weight(float* scratch) const { return col(scratch, slots); }

  /// Runs body(part, slot, first, count) for every chunk, each part's chunks in order. One
  /// task per thread claims the parts one at a time as it comes free (so a thread slowed by
  /// another job leaves its share to the others) and runs them all in the buffers of `slot`,
  /// its own index (a part's weight-gradient sum stays dw(part)). A task per part had worked in
  /// that part's own buffers, so every part's first chunk wrote its columns, panels and padded
  /// images into lines out of cache (a layer's buffers for 8 parts are several MB); one set per
  /// thread stays in L2. The buffers carry nothing from one chunk to the next and a part's sums
  /// do not depend on the thread that runs it: the same bits.
  template <class Body>
  void run(const Body& body) const {
    if (parts == 0) return;  // an empty batch
    const std::size_t threads = std::clamp<std::size_t>(static_cast<std::size_t>(num_threads()), 1, slots);
    std::atomic<std::size_t> next{0};
    parallel_run(static_cast<int>(threads), [&](int t) {
      for (std::size_t part; (part = next.fetch_add(1, std::memory_order_relaxed)) < parts;)
        run_part(part, static_cast<std::size_t>(t), body);
    });
  }
  /// Runs body(part, slot, first, count) for the chunks of one part, in order.
  template <class Body>
  void run_part(std::size_t part, std::size_t slot, const Body& body) const {
    const std::size_t end = batch * (part + 1) / parts;
    for (std::size_t first = batch * part / parts; first < end; first += chunk)
      body(part, slot, first, std::min(chunk, end - first));
  }
  bool first_of_part(std::size_t part, std::size_t first) const { return first == batch * part / parts; }

  /// dw += the parts' weight-gradient sums, added in part order (to 0 with `fresh`).
  void add_weight_grad(float* scratch, bool fresh, float* dw_out) const {
    if (fresh) std::fill_n(dw_out, dw_floats, 0.0F);
    parallel_for(dw_floats, 4096, [&](std::size_t begin, std::size_t end) {
      for (std::size_t part = 0; part < parts; ++part) {
        const float* sum = dw(scratch, part);
        for (std::size_t i = begin; i < end; ++i) dw_out[i] += sum[i];
      }
    });
  }
};

/// Marks a conv node writes_fresh (Tape::sweep_backward): its rule then writes the input's
/// gradient, if the tape hands it over unzeroed, instead of adding to it (the same bits, without
/// a pass of zeros and, for conv2d, col2im's reading them back), and zeroes a fresh weight or
/// bias gradient (not a parameter's: those accumulate) before adding to it. Only when the
/// input is not also the weight or the bias: the rule handles the weight before the input.
void mark_writes_fresh(Node& node, Var x, Var weight, const Var* bias) {
  node.writes_fresh = x.index() != weight.index() && (!bias || x.index() != bias->index());
}

/// The bias gradient (input 2, if any) of a conv node: db += the sum of grad over the batch and
/// the positions (before the ReLU if relu_out, the output of a fused one, is not null), or =
/// with a fresh gradient.
void bias_grad(Tape& t, const Node& n, const float* grad, const float* relu_out, std::size_t batch,
               std::size_t channels, std::size_t positions) {
  if (n.arity != 3 || !input(t, n, 2).requires_grad) return;
  float* db = input(t, n, 2).grad().data();
  if (detail::fresh(n, 2)) std::fill_n(db, channels, 0.0F);
  if (relu_out)
    add_bias_grad<true>(grad, relu_out, batch, channels, positions, db);
  else
    add_bias_grad<false>(grad, nullptr, batch, channels, positions, db);
}

/// The gradient of images [first, first + count) of a conv node's output, [count, out_floats]:
/// the node's own, or with a fused ReLU the one before it, written into `masked`.
const float* chunk_grad(const Node& n, bool relu, std::size_t out_floats, std::size_t first, std::size_t count,
                        float* masked) {
  const float* grad = n.grad().data();
  if (!relu) return grad + first * out_floats;
  relu_grad(grad, n.value().data(), out_floats, first, count, masked);
  return masked;
}

/// The node's scratch buffer of n floats (its capacity stays from step to step).
float* scratch(Node& node, std::size_t n) {
  if (node.scratch.size() != n) node.scratch.resize({n});
  return node.scratch.data();
}

/// Whether a conv op takes the batch-in-lanes kernels: a kernel 4 x 4, stride 2, padding 1,
/// dilation 1, no output padding, and sizes conv_lanes_fits covers (an AVX-512 build, channels
/// multiples of 8, the big side's height and width even), on a batch that is not empty. Fused
/// ReLU, bias and which gradients are needed do not matter.
bool takes_lanes(std::size_t batch, std::size_t kernel_h, std::size_t kernel_w, Size2 stride, Size2 padding,
                 Size2 dilation, Size2 output_padding, std::size_t big_c, std::size_t small_c, std::size_t big_h,
                 std::size_t big_w) {
  return conv_lanes_enabled() && batch > 0 && kernel_h == 4 && kernel_w == 4 && stride.h == 2 && stride.w == 2 &&
         padding.h == 1 && padding.w == 1 && dilation.h == 1 && dilation.w == 1 && output_padding.h == 0 &&
         output_padding.w == 0 && conv_lanes_fits(big_c, small_c, big_h, big_w);
}

/// The forward of a conv op on the lanes path: sizes the node's scratch for this batch's threads.
void lanes_forward(Node& out, const LanesConvShape& shape, bool input_big, Var x, Var weight, const Var* bias,
                   bool relu) {
  const std::size_t slots = conv_lanes_slots(shape.batch);
  float* buffers = scratch(out, conv_lanes_scratch_floats(shape, slots));
  conv_lanes_forward(shape, input_big, x.value().data(), weight.value().data(), bias ? bias->value().data() : nullptr,
                     relu, out.own_value.data(), buffers, slots);
}

/// The backward of a conv op its forward ran on the lanes path: the gradients its inputs need,
/// written or added to as the node's fresh_inputs say.
void lanes_backward(Tape& t, const Node& n, const LanesConvShape& shape, bool input_big, bool relu) {
  Node& x = input(t, n, 0);
  Node& w = input(t, n, 1);
  LanesConvGrads grads;
  if (x.requires_grad) grads = {x.grad().data(), !detail::fresh(n, 0)};
  if (w.requires_grad) {
    grads.dw = w.grad().data();
    grads.dw_add = !detail::fresh(n, 1);
  }
  if (n.arity == 3 && input(t, n, 2).requires_grad) {
    grads.db = input(t, n, 2).grad().data();
    grads.db_add = !detail::fresh(n, 2);
  }
  if (!grads.dx && !grads.dw && !grads.db) return;
  conv_lanes_backward(shape, input_big, x.value().data(), w.value().data(), relu ? n.value().data() : nullptr,
                      n.grad().data(), grads, n.scratch.data(), conv_lanes_slots_in(shape, n.scratch.size()));
}

}  // namespace

// ---- conv2d ----

/// conv2d's attributes: its options and whether its forward took the lanes path.
struct Conv2dAttrs {
  Conv2dOptions options;
  bool lanes;
};

static ConvGeometry conv2d_geometry(const Shape& x, const Shape& w, const Conv2dOptions& o) {
  return {x[0], x[1], x[2], x[3], w[2], w[3], o.stride.h, o.stride.w, o.padding.h, o.padding.w,
          o.dilation.h, o.dilation.w,
          conv_out_size(x[2], w[2], o.stride.h, o.padding.h, o.dilation.h),
          conv_out_size(x[3], w[3], o.stride.w, o.padding.w, o.dilation.w)};
}

/// A first layer's backward (the input needs no gradient, the weight does): the weight's and
/// the bias's gradients from one pass over the output's gradient. The output channels are cut
/// into groups of whole row panels of the GEMM, which the threads share; each group walks every
/// chunk of the batch in order, gathers its channels' gradient (through the fused ReLU's mask)
/// channel-major, sums the bias from there while it is in L2, and multiplies it by the chunk's
/// columns into its rows of each part's weight-gradient sum. The bias's sums run in
/// add_bias_grad's order (image by image, position by position), and a row of the GEMM's result
/// does not depend on the rows beside it (gemm's K blocks depend on n and k only, and the row
/// panels are whole), so the bits are those of the bias's pass followed by the chunks cut by
/// images; but the gradient and the ReLU's output are read once, not twice (the bias's own pass
/// was about half of the VAE's encoder.0 backward). Returns false, having done nothing, where
/// the groups outnumber the slots' buffers.
static bool first_layer_backward(Tape& t, const Node& n, const Node& x, Node& w, const Conv2dOptions& o,
                                 const ConvGeometry& g, const Chunks& chunks, float* buffers) {
  constexpr std::size_t kGroupRows = 2 * gemm_detail::kMR;
  const std::size_t k = g.col_rows(), positions = g.positions(), out_c = w.value().shape()[0];
  const std::size_t groups = (out_c + kGroupRows - 1) / kGroupRows;
  if (groups > chunks.slots) return false;
  float* db = n.arity == 3 && input(t, n, 2).requires_grad ? input(t, n, 2).grad().data() : nullptr;
  const bool fresh_bias = db && detail::fresh(n, 2);
  const float* grad = n.grad().data();
  const float* relu_out = o.relu ? n.value().data() : nullptr;
  parallel_run(static_cast<int>(groups), [&](int group) {
    const std::size_t c0 = static_cast<std::size_t>(group) * kGroupRows, c1 = std::min(out_c, c0 + kGroupRows);
    const std::size_t channels = c1 - c0, slot = static_cast<std::size_t>(group);
    float* gt = chunks.mat(buffers, slot);
    float* padded = chunks.padded(buffers, slot);
    double total[kGroupRows] = {};
    for (std::size_t part = 0; part < chunks.parts; ++part)
      chunks.run_part(part, slot, [&](std::size_t, std::size_t, std::size_t first, std::size_t count) {
        const std::size_t cols = count * positions;
        gather_channel_major(grad, relu_out, out_c, c0, c1, positions, first, count, gt);
        if (db)
          for (std::size_t c = 0; c < channels; c += kSumGroup)
            add_channel_sums<false>(gt + c * cols, nullptr, std::min(kSumGroup, channels - c), cols, cols, 0,
                                    total + c);
        pad_images(g, x.value().data(), first, count, true, padded);
        const ColumnPanels col_t{&g, padded, count, true};
        gemm_panels_b(false, channels, k, cols, gt, cols, col_t.source(), chunks.first_of_part(part, first) ? 0.0F : 1.0F,
                      chunks.dw(buffers, part) + c0 * k, k, chunks.col(buffers, slot));
      });
    if (db)
      for (std::size_t c = c0; c < c1; ++c) db[c] = (fresh_bias ? 0.0F : db[c]) + static_cast<float>(total[c - c0]);
  });
  chunks.add_weight_grad(buffers, detail::fresh(n, 1), w.grad().data());
  return true;
}

static void conv2d_backward(Tape& t, const Node& n) {
  Node& x = input(t, n, 0);
  Node& w = input(t, n, 1);
  const auto attrs = n.attrs<Conv2dAttrs>();
  const Conv2dOptions& o = attrs.options;
  const Shape& xs = x.value().shape();
  if (attrs.lanes) return lanes_backward(t, n, {xs[0], xs[1], w.value().shape()[0], xs[2], xs[3]}, true, o.relu);
  const ConvGeometry g = conv2d_geometry(x.value().shape(), w.value().shape(), o);
  const std::size_t k = g.col_rows(), positions = g.positions(), out_c = w.value().shape()[0];
  const std::size_t out_floats = out_c * positions;
  Chunks chunks(g.batch, k, out_c, positions, g, o.relu && x.requires_grad ? out_floats : 0);
  chunks.fit_slots(n.scratch.size());
  float* buffers = n.scratch.data();
  if (!x.requires_grad && w.requires_grad && first_layer_backward(t, n, x, w, o, g, chunks, buffers)) return;
  bias_grad(t, n, n.grad().data(), o.relu ? n.value().data() : nullptr, g.batch, out_c, positions);
  if (!w.requires_grad && !x.requires_grad) return;
  float* packed_wt = chunks.weight(buffers);  // Wᵀ [K, O], for dcol
  if (x.requires_grad) col2im_gemm_pack(g, out_c, w.value().data(), packed_wt);
  chunks.run([&](std::size_t part, std::size_t slot, std::size_t first, std::size_t count) {
    float* col = chunks.col(buffers, slot);
    // The chunk's gradient before the fused ReLU, taken once for both products when the input
    // needs its gradient; for the weight's alone (a first layer) the ReLU's mask is applied as
    // the gradient is gathered, which saves a pass.
    const float* grad =
        x.requires_grad ? chunk_grad(n, o.relu, out_floats, first, count, chunks.grad(buffers, slot)) : nullptr;
    if (w.requires_grad) {  // dW[O, K] (+)= G' colᵀ, the part's first chunk overwriting
      float* gt = chunks.mat(buffers, slot);
      const std::size_t cols = count * positions;
      if (grad)
        gather_channel_major(grad, nullptr, out_c, positions, 0, count, gt);
      else
        gather_channel_major(n.grad().data(), o.relu ? n.value().data() : nullptr, out_c, positions, first, count,
                             gt);
      float* padded = chunks.padded(buffers, slot);
      pad_images(g, x.value().data(), first, count, true, padded);
      const ColumnPanels col_t{&g, padded, count, true};
      const bool first_chunk = chunks.first_of_part(part, first);
      gemm_panels_b(false, out_c, k, cols, gt, cols, col_t.source(), first_chunk ? 0.0F : 1.0F,
                    chunks.dw(buffers, part), k, col);
    }
    if (x.requires_grad) {  // dx += col2im(dcol), dcol = Wᵀ G' added into the pixels as it is computed
      col2im_gemm(g, out_c, packed_wt, grad, first, count, nullptr, !detail::fresh(n, 0), false, x.grad().data(),
                  col);
    }
  });
  if (w.requires_grad) chunks.add_weight_grad(buffers, detail::fresh(n, 1), w.grad().data());
}

static Var conv2d_op(Var x, Var weight, const Var* bias, const Conv2dOptions& o) {
  constexpr const char* op = "conv2d";
  const Dims4 xd = dims4(op, "input", x), wd = dims4(op, "weight", weight);
  if (wd.c != xd.c)
    throw ShapeError(fmt::format("conv2d: weight {} expects {} input channels, input {} has {}",
                                 to_string(weight.shape()), wd.c, to_string(x.shape()), xd.c));
  check_not_empty(op, x, xd, weight, wd, wd.b);
  check_positive(op, "stride", o.stride);
  check_positive(op, "dilation", o.dilation);
  if (bias) check_bias(op, *bias, wd.b);
  const ConvGeometry g = conv2d_geometry(x.shape(), weight.shape(), o);
  if (g.out_h == 0 || g.out_w == 0 || wd.h == 0 || wd.w == 0)
    throw ShapeError(fmt::format("conv2d: kernel {}x{} (dilation {}, {}) does not fit input {} padded by ({}, {})",
                                 wd.h, wd.w, o.dilation.h, o.dilation.w, to_string(x.shape()), o.padding.h,
                                 o.padding.w));
  Tape& tape = x.tape();
  const Shape out_shape{xd.b, wd.b, g.out_h, g.out_w};
  Node& out = bias ? tape.record(op, {x, weight, *bias}, out_shape, conv2d_backward)
                   : tape.record(op, {x, weight}, out_shape, conv2d_backward);
  const bool lanes = takes_lanes(xd.b, wd.h, wd.w, o.stride, o.padding, o.dilation, 0, xd.c, wd.b, xd.h, xd.w);
  out.set_attrs(Conv2dAttrs{o, lanes});
  mark_writes_fresh(out, x, weight, bias);
  if (lanes) {
    lanes_forward(out, {xd.b, xd.c, wd.b, xd.h, xd.w}, true, x, weight, bias, o.relu);
    return tape.last();
  }
  const std::size_t k = g.col_rows(), positions = g.positions();
  // (the gradient before the ReLU is held chunk by chunk where the input needs its gradient)
  const Chunks chunks(g.batch, k, wd.b, positions, g, o.relu && x.requires_grad() ? wd.b * positions : 0);
  float* buffers = scratch(out, chunks.scratch_floats());
  const float* bias_data = bias ? bias->value().data() : nullptr;
  float* packed_w = chunks.weight(buffers);  // W [O, K]
  gemm_pack_a(false, wd.b, k, weight.value().data(), k, packed_w);
  chunks.run([&](std::size_t, std::size_t slot, std::size_t first, std::size_t count) {
    float* col = chunks.col(buffers, slot);
    float* yt = chunks.mat(buffers, slot);
    const std::size_t cols = count * positions;
    if (implicit_gemm(wd.b, cols, k)) {  // Y' = W col, its columns gathered as gemm packs them
      float* padded = chunks.padded(buffers, slot);
      pad_images(g, x.value().data(), first, count, false, padded);
      const ColumnPanels columns{&g, padded, count, false};
      gemm_prepacked_a_panels_b(wd.b, cols, k, packed_w, columns.source(), 0.0F, yt, cols, col);
      scatter_channel_major(yt, wd.b, positions, first, count, bias_data, false, o.relu, out.own_value.data());
    } else {  // gemm reads the columns in place and writes each image's output where it belongs
      im2col(g, x.value().data(), first, count, col, chunks.work(buffers, slot));
      products_into_images(wd.b, positions, k, packed_w, col, count, bias_data, o.relu,
                           out.own_value.data() + first * wd.b * positions);
    }
  });
  return tape.last();
}

Var conv2d(Var x, Var weight, Var bias, const Conv2dOptions& options) { return conv2d_op(x, weight, &bias, options); }
Var conv2d(Var x, Var weight, const Conv2dOptions& options) { return conv2d_op(x, weight, nullptr, options); }

// ---- conv_transpose2d ----
// The geometry is that of the conv2d whose input gradient this op is: its image is our
// output [B, O, Ho, Wo], its kernel positions our input's H x W.

/// conv_transpose2d's attributes: its options and whether its forward took the lanes path.
struct ConvTranspose2dAttrs {
  ConvTranspose2dOptions options;
  bool lanes;
};

static ConvGeometry conv_transpose2d_geometry(const Shape& x, const Shape& w, const Shape& y,
                                              const ConvTranspose2dOptions& o) {
  return {x[0], w[1], y[2], y[3], w[2], w[3], o.stride.h, o.stride.w, o.padding.h, o.padding.w,
          o.dilation.h, o.dilation.w, x[2], x[3]};
}

static void conv_transpose2d_backward(Tape& t, const Node& n) {
  Node& x = input(t, n, 0);
  Node& w = input(t, n, 1);
  const auto attrs = n.attrs<ConvTranspose2dAttrs>();
  const ConvTranspose2dOptions& o = attrs.options;
  const Shape& ys = n.value().shape();
  if (attrs.lanes) return lanes_backward(t, n, {ys[0], ys[1], w.value().shape()[0], ys[2], ys[3]}, false, o.relu);
  const ConvGeometry g = conv_transpose2d_geometry(x.value().shape(), w.value().shape(), n.value().shape(), o);
  const std::size_t k = g.col_rows(), positions = g.positions(), in_c = x.value().shape()[1];
  const std::size_t out_floats = g.channels * g.height * g.width;
  Chunks chunks(g.batch, k, in_c, positions, g, o.relu ? out_floats : 0);
  chunks.fit_slots(n.scratch.size());
  float* buffers = n.scratch.data();
  bias_grad(t, n, n.grad().data(), o.relu ? n.value().data() : nullptr, g.batch, g.channels, g.height * g.width);
  if (!w.requires_grad && !x.requires_grad) return;
  float* packed_w = chunks.weight(buffers);  // W [C, O kh kw], for dX'
  if (x.requires_grad) gemm_pack_a(false, in_c, k, w.value().data(), k, packed_w);
  chunks.run([&](std::size_t part, std::size_t slot, std::size_t first, std::size_t count) {
    float* col = chunks.col(buffers, slot);
    const float* grad = chunk_grad(n, o.relu, out_floats, first, count, chunks.grad(buffers, slot));
    float* xt = chunks.mat(buffers, slot);
    const std::size_t cols = count * positions;
    // dcol = im2col(G) [O kh kw, count H W], gathered from the padded images as gemm packs it
    float* padded = chunks.padded(buffers, slot);
    if (w.requires_grad) {  // dW[C, O kh kw] (+)= X' dcolᵀ, the part's first chunk overwriting
      pad_images(g, grad, 0, count, true, padded);
      gather_channel_major(x.value().data(), nullptr, in_c, positions, first, count, xt);
      const ColumnPanels dcol_t{&g, padded, count, true};
      const bool first_chunk = chunks.first_of_part(part, first);
      gemm_panels_b(false, in_c, k, cols, xt, cols, dcol_t.source(), first_chunk ? 0.0F : 1.0F,
                    chunks.dw(buffers, part), k, col);
    }
    if (x.requires_grad) {  // dX' [C, count H W] = W dcol
      if (implicit_gemm(in_c, cols, k)) {
        pad_images(g, grad, 0, count, false, padded);  // (laid out for dcol, not dcolᵀ)
        const ColumnPanels dcol{&g, padded, count, false};
        gemm_prepacked_a_panels_b(in_c, cols, k, packed_w, dcol.source(), 0.0F, xt, cols, col);
      } else {  // gemm reads dcol in place
        im2col(g, grad, 0, count, col, chunks.work(buffers, slot));
        gemm_prepacked_a(in_c, cols, k, packed_w, false, col, cols, 0.0F, xt, cols);
      }
      scatter_channel_major(xt, in_c, positions, first, count, nullptr, !detail::fresh(n, 0), false, x.grad().data());
    }
  });
  if (w.requires_grad) chunks.add_weight_grad(buffers, detail::fresh(n, 1), w.grad().data());
}

static Var conv_transpose2d_op(Var x, Var weight, const Var* bias, const ConvTranspose2dOptions& o) {
  constexpr const char* op = "conv_transpose2d";
  const Dims4 xd = dims4(op, "input", x), wd = dims4(op, "weight", weight);
  if (wd.b != xd.c)
    throw ShapeError(fmt::format("conv_transpose2d: weight {} ([in, out, kh, kw]) expects {} input channels, "
                                 "input {} has {}",
                                 to_string(weight.shape()), wd.b, to_string(x.shape()), xd.c));
  check_not_empty(op, x, xd, weight, wd, wd.c);
  check_positive(op, "stride", o.stride);
  check_positive(op, "dilation", o.dilation);
  if ((o.output_padding.h >= o.stride.h && o.output_padding.h >= o.dilation.h) ||
      (o.output_padding.w >= o.stride.w && o.output_padding.w >= o.dilation.w))
    throw ShapeError(fmt::format("conv_transpose2d: output_padding ({}, {}) must be smaller than the stride or "
                                 "the dilation",
                                 o.output_padding.h, o.output_padding.w));
  if (bias) check_bias(op, *bias, wd.c);
  // (H - 1) stride - 2 pad + dil (k - 1) + output_padding + 1, computed without going below 0
  auto out_size = [](std::size_t in, std::size_t k, std::uint32_t s, std::uint32_t p, std::uint32_t d,
                     std::uint32_t op_pad) -> std::size_t {
    const std::size_t full = (in - 1) * s + d * (k - 1) + op_pad + 1;
    return full > 2 * std::size_t{p} ? full - 2 * std::size_t{p} : 0;
  };
  const std::size_t oh = xd.h && wd.h ? out_size(xd.h, wd.h, o.stride.h, o.padding.h, o.dilation.h, o.output_padding.h) : 0;
  const std::size_t ow = xd.w && wd.w ? out_size(xd.w, wd.w, o.stride.w, o.padding.w, o.dilation.w, o.output_padding.w) : 0;
  if (oh == 0 || ow == 0)
    throw ShapeError(fmt::format("conv_transpose2d: input {} with weight {} and padding ({}, {}) leaves no output",
                                 to_string(x.shape()), to_string(weight.shape()), o.padding.h, o.padding.w));
  Tape& tape = x.tape();
  const Shape out_shape{xd.b, wd.c, oh, ow};
  Node& out = bias ? tape.record(op, {x, weight, *bias}, out_shape, conv_transpose2d_backward)
                   : tape.record(op, {x, weight}, out_shape, conv_transpose2d_backward);
  const bool lanes =
      takes_lanes(xd.b, wd.h, wd.w, o.stride, o.padding, o.dilation, o.output_padding, wd.c, wd.b, oh, ow);
  out.set_attrs(ConvTranspose2dAttrs{o, lanes});
  mark_writes_fresh(out, x, weight, bias);
  if (lanes) {
    lanes_forward(out, {xd.b, wd.c, wd.b, oh, ow}, false, x, weight, bias, o.relu);
    return tape.last();
  }
  const ConvGeometry g = conv_transpose2d_geometry(x.shape(), weight.shape(), out_shape, o);
  const std::size_t k = g.col_rows(), positions = g.positions();
  const Chunks chunks(g.batch, k, xd.c, positions, g, o.relu ? wd.c * oh * ow : 0);
  float* buffers = scratch(out, chunks.scratch_floats());
  const float* bias_data = bias ? bias->value().data() : nullptr;
  float* y = out.own_value.data();
  float* packed_wt = chunks.weight(buffers);  // Wᵀ [O kh kw, C]
  col2im_gemm_pack(g, xd.c, weight.value().data(), packed_wt);
  const float* x_data = x.value().data();
  chunks.run([&](std::size_t, std::size_t slot, std::size_t first, std::size_t count) {  // y = bias + col2im(Wᵀ X')
    col2im_gemm(g, xd.c, packed_wt, x_data + first * xd.c * positions, first, count, bias_data, false, o.relu, y,
                chunks.col(buffers, slot));
  });
  return tape.last();
}

Var conv_transpose2d(Var x, Var weight, Var bias, const ConvTranspose2dOptions& options) {
  return conv_transpose2d_op(x, weight, &bias, options);
}
Var conv_transpose2d(Var x, Var weight, const ConvTranspose2dOptions& options) {
  return conv_transpose2d_op(x, weight, nullptr, options);
}

}  // namespace ag
