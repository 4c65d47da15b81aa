// matmul, transpose and the fused linear layer. With Y = A B and upstream gradient G:
//   dA = G Bᵀ,  dB = Aᵀ G
// which gemm computes in place from the stored operands.
#include <fmt/format.h>

#include "autograd/kernels/gemm.hpp"
#include "autograd/ops.hpp"
#include "autograd/ops/common.hpp"

namespace ag {
using detail::input;

// ---- matmul: [M, K] x [K, N] -> [M, N] ----

static void matmul_backward(Tape& t, const Node& n) {
  Node& a = input(t, n, 0);
  Node& b = input(t, n, 1);
  const std::size_t m = a.value().shape()[0], k = a.value().shape()[1], cols = b.value().shape()[1];
  const float* g = n.grad().data();
  if (a.requires_grad)  // dA[M, K] += G[M, N] Bᵀ
    gemm(false, true, m, k, cols, g, cols, b.value().data(), cols, 1.0F, a.grad().data(), k);
  if (b.requires_grad)  // dB[K, N] += Aᵀ G[M, N]
    gemm(true, false, k, cols, m, a.value().data(), k, g, cols, 1.0F, b.grad().data(), cols);
}

Var matmul(Var a, Var b) {
  if (a.cols() != b.rows())
    throw ShapeError(fmt::format("matmul: shapes {} and {} do not chain ({} columns vs {} rows)",
                                 to_string(a.shape()), to_string(b.shape()), a.cols(), b.rows()));
  const std::size_t m = a.rows(), k = a.cols(), cols = b.cols();
  Tape& tape = a.tape();
  Node& out = tape.record("matmul", {a, b}, {m, cols}, matmul_backward);
  gemm(false, false, m, cols, k, a.value().data(), k, b.value().data(), cols, 0.0F,
       out.own_value.data(), cols);
  return tape.last();
}

// ---- transpose: y[j, i] = x[i, j];  dx[i, j] += g[j, i] ----

static void transpose_backward(Tape& t, const Node& n) {
  Node& x = input(t, n, 0);
  if (!x.requires_grad) return;
  const std::size_t rows = x.value().shape()[0], cols = x.value().shape()[1];
  const float* g = n.grad().data();
  float* dx = x.grad().data();
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j) dx[i * cols + j] += g[j * rows + i];
}

Var transpose(Var x) {
  const std::size_t rows = x.rows(), cols = x.cols();
  Tape& tape = x.tape();
  Node& out = tape.record("transpose", {x}, {cols, rows}, transpose_backward);
  const float* px = x.value().data();
  float* y = out.own_value.data();
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j) y[j * rows + i] = px[i * cols + j];
  return tape.last();
}

// ---- linear: Y[B, out] = X[B, in] Wᵀ + b, W stored [out, in] as in PyTorch ----
//   dX = G W,  dW = Gᵀ X,  db = column sums of G

static void linear_backward(Tape& t, const Node& n) {
  Node& x = input(t, n, 0);
  Node& w = input(t, n, 1);
  const std::size_t batch = x.value().shape()[0], in = x.value().shape()[1];
  const std::size_t out = w.value().shape()[0];
  const float* g = n.grad().data();
  if (x.requires_grad)
    gemm(false, false, batch, in, out, g, out, w.value().data(), in, 1.0F, x.grad().data(), in);
  if (w.requires_grad)
    gemm(true, false, out, in, batch, g, out, x.value().data(), in, 1.0F, w.grad().data(), in);
  if (n.arity == 3) {
    Node& b = input(t, n, 2);
    if (!b.requires_grad) return;
    float* db = b.grad().data();
    for (std::size_t i = 0; i < batch; ++i)
      for (std::size_t j = 0; j < out; ++j) db[j] += g[i * out + j];
  }
}

static void check_linear(Var x, Var weight) {
  if (x.cols() != weight.cols())
    throw ShapeError(fmt::format(
        "linear: input {} and weight {} do not fit (weight is [out, in]; in must equal the "
        "input's {} columns)",
        to_string(x.shape()), to_string(weight.shape()), x.cols()));
}

Var linear(Var x, Var weight, Var bias) {
  check_linear(x, weight);
  const std::size_t batch = x.rows(), in = x.cols(), out = weight.rows();
  if (bias.shape() != Shape{1, out})
    throw ShapeError(fmt::format("linear: bias {} must be [1, {}] for weight {}",
                                 to_string(bias.shape()), out, to_string(weight.shape())));
  Tape& tape = x.tape();
  Node& node = tape.record("linear", {x, weight, bias}, {batch, out}, linear_backward);
  float* y = node.own_value.data();
  const float* b = bias.value().data();
  for (std::size_t i = 0; i < batch; ++i)
    for (std::size_t j = 0; j < out; ++j) y[i * out + j] = b[j];
  gemm(false, true, batch, out, in, x.value().data(), in, weight.value().data(), in, 1.0F, y, out);
  return tape.last();
}

Var linear(Var x, Var weight) {
  check_linear(x, weight);
  const std::size_t batch = x.rows(), in = x.cols(), out = weight.rows();
  Tape& tape = x.tape();
  Node& node = tape.record("linear", {x, weight}, {batch, out}, linear_backward);
  gemm(false, true, batch, out, in, x.value().data(), in, weight.value().data(), in, 0.0F,
       node.own_value.data(), out);
  return tape.last();
}

}  // namespace ag
