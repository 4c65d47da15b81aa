// conv2d and conv_transpose2d on NCHW tensors, as GEMMs over im2col columns
// (autograd/kernels/conv.hpp). With col = im2col(x) [K = C kh kw, N = B Ho Wo] and the output
// and its gradient in channel-major form Y', G' [O, N]:
//   conv2d            Y' = W col               dW += G' colᵀ   dcol = Wᵀ G', dx += col2im(dcol)
//   conv_transpose2d  y = col2im(Wᵀ X')        dcol = im2col(G)   dX' = W dcol,  dW += X' dcolᵀ
// (for the transposed convolution the weight is [C, O kh kw] and im2col runs on its output).
// The bias gradient is the sum of G over the batch and the positions, in double.
//
// Buffers: everything the forward and backward compute between the GEMMs lives in the node's
// `scratch` array, which keeps its size from step to step, so a training loop allocates nothing
// once the tape has seen the batch size. The backward rule recomputes what it needs (an im2col
// or a transpose costs about 1/O of the GEMM) instead of trusting the forward's leftovers, so a
// second backward over the same record is still right.
#include <fmt/format.h>

#include "autograd/kernels/conv.hpp"
#include "autograd/kernels/gemm.hpp"
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

void check_positive(const char* op, const char* what, Size2 s) {
  if (s.h == 0 || s.w == 0) throw ShapeError(fmt::format("{}: {} ({}, {}) must be positive", op, what, s.h, s.w));
}

void check_bias(const char* op, Var bias, std::size_t out_channels) {
  if (bias.numel() != out_channels || bias.dim() > 2 || (bias.dim() == 2 && bias.rows() != 1))
    throw ShapeError(fmt::format("{}: bias {} must be [{}] (one value per output channel)", op,
                                 to_string(bias.shape()), out_channels));
}

/// out[b, c, p] = bias[c], or 0 without a bias.
void fill_bias(float* out, const float* bias, std::size_t batch, std::size_t channels, std::size_t positions) {
  for (std::size_t b = 0; b < batch; ++b)
    for (std::size_t c = 0; c < channels; ++c)
      std::fill(out + (b * channels + c) * positions, out + (b * channels + c + 1) * positions,
                bias ? bias[c] : 0.0F);
}

/// db[c] += sum over rows of G' [C, N] (channel-major), each row in double.
void add_row_sums(const float* g, std::size_t rows, std::size_t cols, float* db) {
  for (std::size_t r = 0; r < rows; ++r) {
    double total = 0.0;
    for (std::size_t i = 0; i < cols; ++i) total += g[r * cols + i];
    db[r] += static_cast<float>(total);
  }
}

/// The node's scratch buffer as n floats (its capacity stays from step to step).
float* scratch(Node& node, std::size_t n) {
  if (node.scratch.size() != n) node.scratch.resize({n});
  return node.scratch.data();
}

}  // namespace

// ---- conv2d ----

static ConvGeometry conv2d_geometry(const Shape& x, const Shape& w, const Conv2dOptions& o) {
  return {x[0], x[1], x[2], x[3], w[2], w[3], o.stride.h, o.stride.w, o.padding.h, o.padding.w,
          o.dilation.h, o.dilation.w,
          conv_out_size(x[2], w[2], o.stride.h, o.padding.h, o.dilation.h),
          conv_out_size(x[3], w[3], o.stride.w, o.padding.w, o.dilation.w)};
}

static void conv2d_backward(Tape& t, const Node& n) {
  Node& x = input(t, n, 0);
  Node& w = input(t, n, 1);
  const auto o = n.attrs<Conv2dOptions>();
  const ConvGeometry g = conv2d_geometry(x.value().shape(), w.value().shape(), o);
  const std::size_t k = g.col_rows(), cols = g.col_cols(), out_c = w.value().shape()[0];
  float* col = n.scratch.data();  // sized by the forward
  float* gt = col + k * cols;
  to_channel_major(n.grad().data(), g.batch, out_c, g.out_h * g.out_w, gt);
  if (w.requires_grad) {  // dW[O, K] += G' colᵀ
    im2col(g, x.value().data(), col);
    gemm(false, true, out_c, k, cols, gt, cols, col, cols, 1.0F, w.grad().data(), k);
  }
  if (n.arity == 3 && input(t, n, 2).requires_grad) add_row_sums(gt, out_c, cols, input(t, n, 2).grad().data());
  if (x.requires_grad) {  // dcol = Wᵀ G', then back to the pixels
    gemm(true, false, k, cols, out_c, w.value().data(), k, gt, cols, 0.0F, col, cols);
    col2im_add(g, col, x.grad().data());
  }
}

static Var conv2d_op(Var x, Var weight, const Var* bias, const Conv2dOptions& o) {
  constexpr const char* op = "conv2d";
  const Dims4 xd = dims4(op, "input", x), wd = dims4(op, "weight", weight);
  if (wd.c != xd.c)
    throw ShapeError(fmt::format("conv2d: weight {} expects {} input channels, input {} has {}",
                                 to_string(weight.shape()), wd.c, to_string(x.shape()), xd.c));
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
  out.set_attrs(o);
  const std::size_t k = g.col_rows(), cols = g.col_cols(), positions = g.out_h * g.out_w;
  float* col = scratch(out, k * cols + wd.b * cols);  // col, then G' (or Y') [O, cols]
  float* yt = col + k * cols;
  im2col(g, x.value().data(), col);
  gemm(false, false, wd.b, cols, k, weight.value().data(), k, col, cols, 0.0F, yt, cols);
  fill_bias(out.own_value.data(), bias ? bias->value().data() : nullptr, xd.b, wd.b, positions);
  add_from_channel_major(yt, xd.b, wd.b, positions, out.own_value.data());
  return tape.last();
}

Var conv2d(Var x, Var weight, Var bias, const Conv2dOptions& options) { return conv2d_op(x, weight, &bias, options); }
Var conv2d(Var x, Var weight, const Conv2dOptions& options) { return conv2d_op(x, weight, nullptr, options); }

// ---- conv_transpose2d ----
// The geometry is that of the conv2d whose input gradient this op is: its image is our
// output [B, O, Ho, Wo], its kernel positions our input's H x W.

static ConvGeometry conv_transpose2d_geometry(const Shape& x, const Shape& w, const Shape& y,
                                              const ConvTranspose2dOptions& o) {
  return {x[0], w[1], y[2], y[3], w[2], w[3], o.stride.h, o.stride.w, o.padding.h, o.padding.w,
          o.dilation.h, o.dilation.w, x[2], x[3]};
}

static void conv_transpose2d_backward(Tape& t, const Node& n) {
  Node& x = input(t, n, 0);
  Node& w = input(t, n, 1);
  const auto o = n.attrs<ConvTranspose2dOptions>();
  const ConvGeometry g = conv_transpose2d_geometry(x.value().shape(), w.value().shape(), n.value().shape(), o);
  const std::size_t k = g.col_rows(), cols = g.col_cols(), in_c = x.value().shape()[1];
  float* col = n.scratch.data();  // sized by the forward
  float* xt = col + k * cols;
  im2col(g, n.grad().data(), col);  // dcol [O kh kw, B H W]
  if (w.requires_grad) {  // dW[C, O kh kw] += X' dcolᵀ
    to_channel_major(x.value().data(), g.batch, in_c, cols / g.batch, xt);
    gemm(false, true, in_c, k, cols, xt, cols, col, cols, 1.0F, w.grad().data(), k);
  }
  if (n.arity == 3 && input(t, n, 2).requires_grad) {
    // db[o] += the sum of G over the batch and the positions, in double
    const std::size_t out_c = g.channels, plane = g.height * g.width;
    const float* grad = n.grad().data();
    float* db = input(t, n, 2).grad().data();
    for (std::size_t c = 0; c < out_c; ++c) {
      double total = 0.0;
      for (std::size_t b = 0; b < g.batch; ++b)
        for (std::size_t p = 0; p < plane; ++p) total += grad[(b * out_c + c) * plane + p];
      db[c] += static_cast<float>(total);
    }
  }
  if (x.requires_grad) {  // dX' [C, B H W] = W dcol
    gemm(false, false, in_c, cols, k, w.value().data(), k, col, cols, 0.0F, xt, cols);
    add_from_channel_major(xt, g.batch, in_c, cols / g.batch, x.grad().data());
  }
}

static Var conv_transpose2d_op(Var x, Var weight, const Var* bias, const ConvTranspose2dOptions& o) {
  constexpr const char* op = "conv_transpose2d";
  const Dims4 xd = dims4(op, "input", x), wd = dims4(op, "weight", weight);
  if (wd.b != xd.c)
    throw ShapeError(fmt::format("conv_transpose2d: weight {} ([in, out, kh, kw]) expects {} input channels, "
                                 "input {} has {}",
                                 to_string(weight.shape()), wd.b, to_string(x.shape()), xd.c));
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
  out.set_attrs(o);
  const ConvGeometry g = conv_transpose2d_geometry(x.shape(), weight.shape(), out_shape, o);
  const std::size_t k = g.col_rows(), cols = g.col_cols();
  float* col = scratch(out, k * cols + xd.c * cols);  // col [O kh kw, B H W], then X' [C, B H W]
  float* xt = col + k * cols;
  to_channel_major(x.value().data(), xd.b, xd.c, xd.h * xd.w, xt);
  gemm(true, false, k, cols, xd.c, weight.value().data(), k, xt, cols, 0.0F, col, cols);  // col = Wᵀ X'
  fill_bias(out.own_value.data(), bias ? bias->value().data() : nullptr, xd.b, wd.c, oh * ow);
  col2im_add(g, col, out.own_value.data());
  return tape.last();
}

Var conv_transpose2d(Var x, Var weight, Var bias, const ConvTranspose2dOptions& options) {
  return conv_transpose2d_op(x, weight, &bias, options);
}
Var conv_transpose2d(Var x, Var weight, const ConvTranspose2dOptions& options) {
  return conv_transpose2d_op(x, weight, nullptr, options);
}

}  // namespace ag
