// matmul and the fused linear layer. With Y = A B and upstream gradient G:
//   dA = G Bᵀ,  dB = Aᵀ G
// which gemm computes in place from the stored operands.
#include <algorithm>

#include <fmt/format.h>

#include "autograd/kernels/gemm.hpp"
#include "autograd/ops.hpp"
#include "autograd/ops/axes.hpp"
#include "autograd/ops/common.hpp"

namespace ag {
using detail::input;

// The backward rules, each defined right after its forward.
static void matmul_backward(Tape& t, const Node& n);
static void linear_backward(Tape& t, const Node& n);

// ---- matmul: [M, K] x [K, N] -> [M, N], and batches of them ----
// A batch is [B, M, K]; a 2-D operand, or a batch of 1, is shared by every product. When the
// right operand is shared, the batch of left operands is one [B*M, K] matrix: one GEMM.

struct MatmulDims {
  std::size_t batch, m, k, n;
  bool a_batched, b_batched;  // does the operand step with the batch?
};

static MatmulDims matmul_dims(const Shape& a, const Shape& b) {
  const std::size_t ra = a.size(), rb = b.size();
  if (ra < 2 || ra > 3 || rb < 2 || rb > 3 || a[ra - 1] != b[rb - 2])
    throw ShapeError(fmt::format("matmul: shapes {} and {} do not chain (2-D [M, K] x [K, N], or batches "
                                 "[B, M, K] x [B, K, N])",
                                 to_string(a), to_string(b)));
  const std::size_t ba = ra == 3 ? a[0] : 1, bb = rb == 3 ? b[0] : 1;
  if (ba != bb && ba != 1 && bb != 1)
    throw ShapeError(fmt::format("matmul: batch sizes of {} and {} differ", to_string(a), to_string(b)));
  return {std::max(ba, bb), a[ra - 2], a[ra - 1], b[rb - 1], ba > 1, bb > 1};
}

Var matmul(Var a, Var b) {
  const MatmulDims d = matmul_dims(a.value().shape(), b.value().shape());
  const bool batched = a.dim() == 3 || b.dim() == 3;
  const Shape out_shape = batched ? Shape{d.batch, d.m, d.n} : Shape{d.m, d.n};
  Tape& tape = a.tape();
  Node& out = tape.record("matmul", {a, b}, out_shape, matmul_backward);
  float* y = out.own_value.data();
  if (!d.b_batched) {
    gemm(false, false, d.batch * d.m, d.n, d.k, a.value().data(), d.k, b.value().data(), d.n, 0.0F, y, d.n);
  } else {
    for (std::size_t i = 0; i < d.batch; ++i)
      gemm(false, false, d.m, d.n, d.k, a.value().data() + (d.a_batched ? i : 0) * d.m * d.k, d.k,
           b.value().data() + (d.b_batched ? i : 0) * d.k * d.n, d.n, 0.0F, y + i * d.m * d.n, d.n);
  }
  return tape.last();
}
static void matmul_backward(Tape& t, const Node& n) {
  Node& a = input(t, n, 0);
  Node& b = input(t, n, 1);
  const MatmulDims d = matmul_dims(a.value().shape(), b.value().shape());
  const float* g = n.grad().data();
  if (!d.b_batched) {  // one GEMM over the stacked rows of the batch
    const std::size_t rows = d.batch * d.m;
    if (a.requires_grad)  // dA[rows, K] += G Bᵀ
      gemm(false, true, rows, d.k, d.n, g, d.n, b.value().data(), d.n, 1.0F, a.grad().data(), d.k);
    if (b.requires_grad)  // dB[K, N] += Aᵀ G
      gemm(true, false, d.k, d.n, rows, a.value().data(), d.k, g, d.n, 1.0F, b.grad().data(), d.n);
    return;
  }
  // Per product; a shared operand accumulates the gradients of every product (beta = 1).
  for (std::size_t i = 0; i < d.batch; ++i) {
    const std::size_t ia = d.a_batched ? i : 0, ib = d.b_batched ? i : 0;
    const float* gi = g + i * d.m * d.n;
    if (a.requires_grad)
      gemm(false, true, d.m, d.k, d.n, gi, d.n, b.value().data() + ib * d.k * d.n, d.n, 1.0F,
           a.grad().data() + ia * d.m * d.k, d.k);
    if (b.requires_grad)
      gemm(true, false, d.k, d.n, d.m, a.value().data() + ia * d.m * d.k, d.k, gi, d.n, 1.0F,
           b.grad().data() + ib * d.k * d.n, d.n);
  }
}

// ---- linear: Y[B, out] = X[B, in] Wᵀ + b, W stored [out, in] as in PyTorch ----
//   dX = G W,  dW = Gᵀ X,  db = column sums of G (in double)
// With LinearOptions::relu, Y = max(X Wᵀ + b, 0) and G is first masked where Y > 0 fails.
// X of any rank [..., in] is a matrix of B = (product of the leading dimensions) rows.

/// The result's shape [..., out], after checking x [..., in] against weight [out, in].
static Shape linear_shape(Var x, Var weight) {
  if (x.dim() < 1 || weight.dim() != 2 || x.cols() != weight.cols())
    throw ShapeError(fmt::format(
        "linear: input {} and weight {} do not fit (weight is [out, in]; in must equal the "
        "input's last dimension, {})",
        to_string(x.shape()), to_string(weight.shape()), x.dim() ? x.cols() : 0));
  Shape s = x.value().shape();
  s.back() = weight.rows();
  return s;
}

namespace {
struct LinearAttrs {
  bool relu;  // LinearOptions::relu: the output is max(y, 0), the gradient masked where it is not > 0
};
}  // namespace

/// Whether a linear layer's products run transposed (gemm_linear_transposed for Y,
/// gemm_transposed_output for dX), for a weight [out, in] and a batch of `batch` rows. Multiplying
/// by Wᵀ makes gemm transpose all of W into its panels at every call (the VAE's 400 x 784 weights:
/// 3.8% of an epoch at batch 128, 7.6% at batch 32), and dX = G W has every thread pack all of W;
/// when the batch is shorter than a row of W, the products taken transposed read W in place or
/// pack a share of it per thread, and transpose the batch's side instead, fewer elements: the
/// same bits. Small weights are not worth the extra passes.
static bool linear_weight_is_large(std::size_t out, std::size_t in) { return in * out >= 65536; }
static bool linear_transposed(std::size_t batch, std::size_t out, std::size_t in) {
  return linear_weight_is_large(out, in) && batch < in;
}

/// Y[batch, out] = bias rows (or 0 if bias is null) + X Wᵀ, then max(Y, 0) with relu (applied
/// as Yᵀ is transposed, on the transposed path). input_grad: X will want its gradient.
static void linear_forward(Node& node, std::size_t batch, std::size_t out, std::size_t in, const float* x,
                           const float* w, const float* bias, bool relu, bool input_grad) {
  float* y = node.own_value.data();
  node.set_attrs(LinearAttrs{relu});
  // Sized on either path: a batch that switches path (the last, shorter batch of an epoch)
  // then finds the room that the first, full batches reserved, and a step never allocates. With
  // relu the backward keeps the masked gradient there, and after it dXᵀ (linear_backward).
  const bool large = linear_weight_is_large(out, in);
  if (large || relu) shape_as(node.scratch, {out + (large && input_grad ? in : 0), batch});
  if (linear_transposed(batch, out, in)) {
    gemm_linear_transposed(batch, out, in, x, w, bias, node.scratch.data(), y, relu);
    return;
  }
  if (bias)  // row by row through copy_n (a memmove): as one loop, g++ could not prove y and b
    parallel_for(batch, std::max<std::size_t>(1, detail::kMinElementsPerThread / std::max<std::size_t>(out, 1)),
                 [=](std::size_t r0, std::size_t r1) {  // apart (1.5% of an epoch)
                   for (std::size_t i = r0; i < r1; ++i) std::copy_n(bias, out, y + i * out);
                 });
  gemm(false, true, batch, out, in, x, in, w, in, bias ? 1.0F : 0.0F, y, out);
  if (relu)
    detail::elementwise_for(batch * out, [y](std::size_t begin, std::size_t end) {
      float* __restrict v = y;
      for (std::size_t i = begin; i < end; ++i) v[i] = std::max(v[i], 0.0F);
    });
}

Var linear(Var x, Var weight, Var bias, const LinearOptions& options) {
  const Shape out_shape = linear_shape(x, weight);
  const std::size_t in = x.cols(), out = weight.rows(), batch = x.numel() / std::max<std::size_t>(in, 1);
  if (bias.numel() != out || bias.dim() > 2 || (bias.dim() == 2 && bias.rows() != 1))
    throw ShapeError(fmt::format("linear: bias {} must be [{}] or [1, {}] for weight {}",
                                 to_string(bias.shape()), out, out, to_string(weight.shape())));
  Tape& tape = x.tape();
  Node& node = tape.record(options.relu ? "linear+relu" : "linear", {x, weight, bias}, out_shape, linear_backward);
  node.writes_fresh = true;
  linear_forward(node, batch, out, in, x.value().data(), weight.value().data(), bias.value().data(), options.relu,
                 x.requires_grad());
  return tape.last();
}

Var linear(Var x, Var weight, const LinearOptions& options) {
  const Shape out_shape = linear_shape(x, weight);
  const std::size_t in = x.cols(), out = weight.rows(), batch = x.numel() / std::max<std::size_t>(in, 1);
  Tape& tape = x.tape();
  Node& node = tape.record(options.relu ? "linear+relu" : "linear", {x, weight}, out_shape, linear_backward);
  node.writes_fresh = true;
  linear_forward(node, batch, out, in, x.value().data(), weight.value().data(), nullptr, options.relu,
                 x.requires_grad());
  return tape.last();
}
static void linear_backward(Tape& t, const Node& n) {
  Node& x = input(t, n, 0);
  Node& w = input(t, n, 1);
  Node* b = n.arity == 3 ? &input(t, n, 2) : nullptr;
  const std::size_t in = x.value().shape().back(), batch = x.value().size() / std::max<std::size_t>(in, 1);
  const std::size_t out = w.value().shape()[0];
  const float* g = n.grad().data();
  // A fresh gradient (writes_fresh) is overwritten: beta 0. The kernel's sums never end in -0,
  // so these are the bits 0 + the product gives.
  const auto beta = [&n](int k) { return detail::fresh(n, k) ? 0.0F : 1.0F; };
  const bool bias_grad = b != nullptr && b->requires_grad;
  if (n.attrs<LinearAttrs>().relu) {
    // The gradient before the ReLU, as relu's rule writes it, into the scratch: with the bias
    // gradient's column sums in the same pass, or alone.
    const float* y = n.value().data();
    float* masked = n.scratch.data();
    if (bias_grad)
      detail::add_column_sums(g, batch, out, b->grad().data(), detail::fresh(n, 2), y, masked);
    else
      detail::elementwise_for(batch * out, [y, g, masked](std::size_t begin, std::size_t end) {
        detail::relu_mask_add<true>(y + begin, g + begin, masked + begin, end - begin);
      });
    g = masked;
  } else if (bias_grad) {
    detail::add_column_sums(g, batch, out, b->grad().data(), detail::fresh(n, 2));
  }
  if (x.requires_grad) {
    // Taken transposed into the scratch, past the masked gradient, when it overwrites dX.
    if (beta(0) == 0.0F && linear_transposed(batch, out, in))
      gemm_transposed_output(batch, in, out, g, w.value().data(), n.scratch.data() + batch * out, x.grad().data());
    else
      gemm(false, false, batch, in, out, g, out, w.value().data(), in, beta(0), x.grad().data(), in);
  }
  if (w.requires_grad)
    gemm(true, false, out, in, batch, g, out, x.value().data(), in, beta(1), w.grad().data(), in);
}

}  // namespace ag
