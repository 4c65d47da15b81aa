// matmul and the fused linear layer. With Y = A B and upstream gradient G:
//   dA = G Bᵀ,  dB = Aᵀ G
// which gemm computes in place from the stored operands.
#include <algorithm>
#include <array>
#include <utility>

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

// ---- matmul: [M, K] x [K, N] -> [M, N], and batches of them, as torch.matmul ----
// The dimensions before the last two are batch dimensions and broadcast as in NumPy; a
// 1-D left operand [K] is a row [1, K] and a 1-D right operand [K] a column [K, 1], whose
// added dimension the result then drops. When the right operand is one matrix for every
// product and the left one steps through the whole batch, the batch of left operands is one
// [B*M, K] matrix: one GEMM. Otherwise one GEMM per product, each operand at its offset.

struct MatmulDims {
  std::size_t batch, m, k, n;
  bool one_gemm;  // the right operand is shared and the left one is [batch * m, k]
  // The batch, broadcast: its rank, sizes, and each operand's stride per batch dimension (in
  // matrices; 0 where the operand's size is 1 and it repeats).
  std::size_t rank;
  std::array<std::size_t, kMaxRank> sizes, a_stride, b_stride;

  /// The offsets (in matrices) of product i's two operands.
  std::pair<std::size_t, std::size_t> offsets(std::size_t i) const {
    std::size_t oa = 0, ob = 0;
    for (std::size_t d = rank; d-- > 0;) {
      const std::size_t c = i % sizes[d];
      i /= sizes[d];
      oa += c * a_stride[d];
      ob += c * b_stride[d];
    }
    return {oa, ob};
  }
};

static ShapeError matmul_error(const Shape& a, const Shape& b, const char* why) {
  return ShapeError(fmt::format("matmul: shapes {} and {} {} ([..., M, K] x [..., K, N], the leading batch "
                                "dimensions broadcasting; a 1-D operand is a row on the left, a column on the right)",
                                to_string(a), to_string(b), why));
}

// Each operand's batch shape is its shape without the last two dimensions (a 1-D operand has
// none); `out` receives the result's shape.
static MatmulDims matmul_dims(const Shape& a, const Shape& b, Shape* out = nullptr) {
  const std::size_t ra = a.size(), rb = b.size();
  if (ra == 0 || rb == 0) throw matmul_error(a, b, "include a scalar");
  if (ra == 1 && rb == 1) throw matmul_error(a, b, "give a scalar, which has no rank here; use sum(a * b)");
  const std::size_t m = ra == 1 ? 1 : a[ra - 2], k = a[ra - 1];
  const std::size_t kb = rb == 1 ? b[0] : b[rb - 2], n = rb == 1 ? 1 : b[rb - 1];
  if (k != kb) throw matmul_error(a, b, "do not chain");
  const std::size_t ba = ra > 2 ? ra - 2 : 0, bb = rb > 2 ? rb - 2 : 0;  // batch ranks
  MatmulDims d{};
  d.m = m, d.k = k, d.n = n;
  d.rank = std::max(ba, bb);
  d.batch = 1;
  std::size_t step_a = 1, step_b = 1;  // after the loop: how many matrices each operand holds
  for (std::size_t j = d.rank; j-- > 0;) {  // j counts the batch dimensions from the front
    const std::size_t from_end = d.rank - j;  // 1 = the last batch dimension
    const std::size_t sa = from_end <= ba ? a[ba - from_end] : 1, sb = from_end <= bb ? b[bb - from_end] : 1;
    if (sa != sb && sa != 1 && sb != 1) throw matmul_error(a, b, "have batch dimensions that do not broadcast");
    d.sizes[j] = sa == 1 ? sb : sa;  // (1 with 0 is 0)
    d.a_stride[j] = sa == 1 ? 0 : step_a;
    d.b_stride[j] = sb == 1 ? 0 : step_b;
    step_a *= sa, step_b *= sb;
    d.batch *= d.sizes[j];
  }
  d.one_gemm = step_b == 1 && step_a == d.batch;
  if (out) {
    out->assign(d.sizes.begin(), d.sizes.begin() + static_cast<long>(d.rank));
    if (ra > 1) out->push_back(m);
    if (rb > 1) out->push_back(n);
  }
  return d;
}

Var matmul(Var a, Var b) {
  Shape out_shape;
  const MatmulDims d = matmul_dims(a.value().shape(), b.value().shape(), &out_shape);
  Tape& tape = a.tape();
  Node& out = tape.record("matmul", {a, b}, out_shape, matmul_backward);
  float* y = out.own_value.data();
  if (d.one_gemm) {
    gemm(false, false, d.batch * d.m, d.n, d.k, a.value().data(), d.k, b.value().data(), d.n, 0.0F, y, d.n);
  } else {
    for (std::size_t i = 0; i < d.batch; ++i) {
      const auto [ia, ib] = d.offsets(i);
      gemm(false, false, d.m, d.n, d.k, a.value().data() + ia * d.m * d.k, d.k, b.value().data() + ib * d.k * d.n,
           d.n, 0.0F, y + i * d.m * d.n, d.n);
    }
  }
  return tape.last();
}
static void matmul_backward(Tape& t, const Node& n) {
  Node& a = input(t, n, 0);
  Node& b = input(t, n, 1);
  const MatmulDims d = matmul_dims(a.value().shape(), b.value().shape());
  const float* g = n.grad().data();
  if (d.one_gemm) {  // one GEMM over the stacked rows of the batch
    const std::size_t rows = d.batch * d.m;
    if (a.requires_grad)  // dA[rows, K] += G Bᵀ
      gemm(false, true, rows, d.k, d.n, g, d.n, b.value().data(), d.n, 1.0F, a.grad().data(), d.k);
    if (b.requires_grad)  // dB[K, N] += Aᵀ G
      gemm(true, false, d.k, d.n, rows, a.value().data(), d.k, g, d.n, 1.0F, b.grad().data(), d.n);
    return;
  }
  // Per product; a repeated operand accumulates the gradients of every product (beta = 1).
  for (std::size_t i = 0; i < d.batch; ++i) {
    const auto [ia, ib] = d.offsets(i);
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
// With LinearOptions::relu, Y = max(X Wᵀ + b, 0) and G is first masked where Y <= 0 (a NaN passes, as in relu).
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

/// The rows of x [..., in]: the product of its leading dimensions (not numel / in, which an
/// input of in = 0 would make 0 rows, and the bias never added).
static std::size_t linear_rows(const Shape& x) {
  std::size_t rows = 1;
  for (std::size_t d = 0; d + 1 < x.size(); ++d) rows *= x[d];
  return rows;
}

namespace {
struct LinearAttrs {
  bool relu;  // LinearOptions::relu: the output is max(y, 0), the gradient masked where it is <= 0
};
}  // namespace

/// Whether a linear layer's products take the weight's side (gemm_linear_transposed for Y,
/// gemm_linear_input_grad for dX), for a weight [out, in] and a batch of `batch` rows. Multiplying
/// by Wᵀ makes gemm transpose all of W into its panels at every call (the VAE's 400 x 784 weights:
/// 3.8% of an epoch at batch 128, 7.6% at batch 32), and dX = G W has every thread pack all of W;
/// when the batch is shorter than a row of W, Y is taken transposed reading W in place, and dX
/// cut by W's columns, each thread packing its share of W and reading G in place: the same bits.
/// Small weights are not worth the extra passes. (bench_gemm --linear times the same choice:
/// change it there too.)
static bool linear_weight_is_large(std::size_t out, std::size_t in) { return in * out >= 65536; }
static bool linear_transposed(std::size_t batch, std::size_t out, std::size_t in) {
  return linear_weight_is_large(out, in) && batch < in;
}

/// Y[batch, out] = bias rows (or 0 if bias is null) + X Wᵀ, then max(Y, 0) with relu (applied
/// as Yᵀ is transposed, on the transposed path).
static void linear_forward(Node& node, std::size_t batch, std::size_t out, std::size_t in, const float* x,
                           const float* w, const float* bias, bool relu) {
  float* y = node.own_value.data();
  node.set_attrs(LinearAttrs{relu});
  // Sized on either path: a batch that switches path (the last, shorter batch of an epoch)
  // then finds the room that the first, full batches reserved, and a step never allocates. With
  // relu the backward keeps the masked gradient there (linear_backward).
  if (linear_weight_is_large(out, in) || relu) shape_as(node.scratch, {out, batch});
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
  const std::size_t in = x.cols(), out = weight.rows(), batch = linear_rows(x.shape());
  if (bias.numel() != out || bias.dim() > 2 || (bias.dim() == 2 && bias.rows() != 1))
    throw ShapeError(fmt::format("linear: bias {} must be [{}] or [1, {}] for weight {}",
                                 to_string(bias.shape()), out, out, to_string(weight.shape())));
  Tape& tape = x.tape();
  Node& node = tape.record(options.relu ? "linear+relu" : "linear", {x, weight, bias}, out_shape, linear_backward);
  node.writes_fresh = true;
  linear_forward(node, batch, out, in, x.value().data(), weight.value().data(), bias.value().data(), options.relu);
  return tape.last();
}

Var linear(Var x, Var weight, const LinearOptions& options) {
  const Shape out_shape = linear_shape(x, weight);
  const std::size_t in = x.cols(), out = weight.rows(), batch = linear_rows(x.shape());
  Tape& tape = x.tape();
  Node& node = tape.record(options.relu ? "linear+relu" : "linear", {x, weight}, out_shape, linear_backward);
  node.writes_fresh = true;
  linear_forward(node, batch, out, in, x.value().data(), weight.value().data(), nullptr, options.relu);
  return tape.last();
}
static void linear_backward(Tape& t, const Node& n) {
  Node& x = input(t, n, 0);
  Node& w = input(t, n, 1);
  Node* b = n.arity == 3 ? &input(t, n, 2) : nullptr;
  const std::size_t in = x.value().shape().back(), batch = linear_rows(x.value().shape());
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
    // Cut by W's columns when it overwrites dX.
    if (beta(0) == 0.0F && linear_transposed(batch, out, in))
      gemm_linear_input_grad(batch, in, out, g, w.value().data(), x.grad().data());
    else
      gemm(false, false, batch, in, out, g, out, w.value().data(), in, beta(0), x.grad().data(), in);
  }
  if (w.requires_grad)
    gemm(true, false, out, in, batch, g, out, x.value().data(), in, beta(1), w.grad().data(), in);
}

}  // namespace ag
