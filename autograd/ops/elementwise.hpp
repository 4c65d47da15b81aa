// Shared plumbing for elementwise ops, so that each op's file states only its math:
// a forward f(x) and a derivative f'(x, y) where y = f(x).
#pragma once

#include <cstddef>

#include "autograd/ops/common.hpp"

namespace ag::detail {

/// Records `name` with y[i] = f(x[i]).
template <class F>
Var unary_forward(const char* name, Var x, BackwardFn backward, F f) {
  Tape& tape = x.tape();
  Node& out = tape.record(name, {x}, x.shape(), backward);
  const float* in = x.value().data();
  float* y = out.own_value.data();
  const std::size_t n = out.own_value.size();
  for (std::size_t i = 0; i < n; ++i) y[i] = f(in[i]);
  return tape.last();
}

/// dx[i] += g[i] * dfdx(x[i], y[i]).
template <class D>
void unary_backward(Tape& tape, const Node& node, D dfdx) {
  Node& x = input(tape, node, 0);
  if (!x.requires_grad) return;
  const float* in = x.value().data();
  const float* y = node.value().data();
  const float* g = node.grad().data();
  float* dx = x.grad().data();
  const std::size_t n = node.value().size();
  for (std::size_t i = 0; i < n; ++i) dx[i] += g[i] * dfdx(in[i], y[i]);
}

/// Records `name` with y[i] = f(a[i], b[i]); a and b have the same shape.
template <class F>
Var binary_forward(const char* name, Var a, Var b, BackwardFn backward, F f) {
  Tape& tape = a.tape();
  Node& out = tape.record(name, {a, b}, a.shape(), backward);
  const float* pa = a.value().data();
  const float* pb = b.value().data();
  float* y = out.own_value.data();
  const std::size_t n = out.own_value.size();
  for (std::size_t i = 0; i < n; ++i) y[i] = f(pa[i], pb[i]);
  return tape.last();
}

/// da[i] += g[i] * dfda(a[i], b[i], y[i]) and db[i] += g[i] * dfdb(a[i], b[i], y[i]).
template <class DA, class DB>
void binary_backward(Tape& tape, const Node& node, DA dfda, DB dfdb) {
  Node& a = input(tape, node, 0);
  Node& b = input(tape, node, 1);
  const float* pa = a.value().data();
  const float* pb = b.value().data();
  const float* y = node.value().data();
  const float* g = node.grad().data();
  const std::size_t n = node.value().size();
  if (a.requires_grad) {
    float* da = a.grad().data();
    for (std::size_t i = 0; i < n; ++i) da[i] += g[i] * dfda(pa[i], pb[i], y[i]);
  }
  if (b.requires_grad) {
    float* db = b.grad().data();
    for (std::size_t i = 0; i < n; ++i) db[i] += g[i] * dfdb(pa[i], pb[i], y[i]);
  }
}

}  // namespace ag::detail
