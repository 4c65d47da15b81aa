// reshape, slice and concat: ops that move elements without changing them, so each
// backward rule moves the gradient back to where the element came from.
#include <algorithm>

#include <fmt/format.h>

#include "autograd/ops.hpp"
#include "autograd/ops/common.hpp"

namespace ag {
using detail::input;

// ---- reshape: row-major order is unchanged, so the gradient is copied as is ----

static void reshape_backward(Tape& t, const Node& n) {
  Node& x = input(t, n, 0);
  if (!x.requires_grad) return;
  const float* g = n.grad().data();
  float* dx = x.grad().data();
  for (std::size_t i = 0; i < n.value().size(); ++i) dx[i] += g[i];
}

Var reshape(Var x, Shape shape) {
  if (shape[0] * shape[1] != x.value().size())
    throw ShapeError(fmt::format("reshape: cannot reshape {} ({} elements) to {}",
                                 to_string(x.shape()), x.value().size(), to_string(shape)));
  Tape& tape = x.tape();
  Node& out = tape.record("reshape", {x}, shape, reshape_backward);
  std::copy(x.value().begin(), x.value().end(), out.own_value.begin());
  return tape.last();
}

// ---- slice: columns [begin, end); the gradient lands back in those columns ----

static void slice_backward(Tape& t, const Node& n) {
  Node& x = input(t, n, 0);
  if (!x.requires_grad) return;
  const std::size_t rows = n.value().shape()[0], width = n.value().shape()[1];
  const std::size_t cols = x.value().shape()[1], begin = n.attr[0];
  const float* g = n.grad().data();
  float* dx = x.grad().data();
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < width; ++j) dx[i * cols + begin + j] += g[i * width + j];
}

Var slice(Var x, std::size_t begin, std::size_t end) {
  if (begin >= end || end > x.cols())
    throw ShapeError(fmt::format("slice: columns [{}, {}) are not a non-empty range inside {}",
                                 begin, end, to_string(x.shape())));
  const std::size_t rows = x.rows(), cols = x.cols(), width = end - begin;
  Tape& tape = x.tape();
  Node& out = tape.record("slice", {x}, {rows, width}, slice_backward);
  out.attr = {begin, end};
  const float* px = x.value().data();
  float* y = out.own_value.data();
  for (std::size_t i = 0; i < rows; ++i)
    std::copy(px + i * cols + begin, px + i * cols + end, y + i * width);
  return tape.last();
}

// ---- concat: [a | b] along columns; each input gets its own block of the gradient ----

static void concat_backward(Tape& t, const Node& n) {
  const std::size_t rows = n.value().shape()[0], cols = n.value().shape()[1];
  const float* g = n.grad().data();
  std::size_t offset = 0;
  for (int k = 0; k < 2; ++k) {
    Node& x = input(t, n, k);
    const std::size_t width = x.value().shape()[1];
    if (x.requires_grad) {
      float* dx = x.grad().data();
      for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t j = 0; j < width; ++j) dx[i * width + j] += g[i * cols + offset + j];
    }
    offset += width;
  }
}

Var concat(Var a, Var b) {
  if (a.rows() != b.rows())
    throw ShapeError(fmt::format("concat: shapes {} and {} have different row counts",
                                 to_string(a.shape()), to_string(b.shape())));
  const std::size_t rows = a.rows(), ca = a.cols(), cb = b.cols();
  Tape& tape = a.tape();
  Node& out = tape.record("concat", {a, b}, {rows, ca + cb}, concat_backward);
  const float* pa = a.value().data();
  const float* pb = b.value().data();
  float* y = out.own_value.data();
  for (std::size_t i = 0; i < rows; ++i) {
    std::copy(pa + i * ca, pa + (i + 1) * ca, y + i * (ca + cb));
    std::copy(pb + i * cb, pb + (i + 1) * cb, y + i * (ca + cb) + ca);
  }
  return tape.last();
}

}  // namespace ag
