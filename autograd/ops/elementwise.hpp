// Shared plumbing for elementwise ops, so that each op's file states only its math:
// a forward f(x) and a derivative f'(x, y) where y = f(x).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

#include "autograd/kernels/parallel.hpp"
#include "autograd/ops/common.hpp"

namespace ag::detail {

/// The fewest elements an elementwise loop hands to each thread: about 4 us of the cheapest
/// loop (a ReLU at about 0.25 ns per element), against about 1 us to wake a polling pool thread
/// and hear back from it. The VAE's [128, 400] activations split in two, its [128, 20] codes
/// stay on one thread. Each element is computed alone, so the cut never changes a result.
inline constexpr std::size_t kMinElementsPerThread = 16384;

/// loop(begin, end) over [0, n), on all threads when n is large (see kMinElementsPerThread).
/// The loops below copy what they read into locals first: g++ keeps a loop scalar when a store
/// to the output might change a float it reads through a captured reference.
template <class Loop>
void elementwise_for(std::size_t n, const Loop& loop) {
  if (n < 2 * kMinElementsPerThread) return loop(std::size_t{0}, n);  // (kept inline: a 1-element op pays nothing)
  parallel_for(n, kMinElementsPerThread, loop);
}

// relu's rule: dx[i] += x[i] <= 0 ? 0 : g[i] (with Fresh: dx[i] = 0 + that, dx unread), in
// loops of restrict pointers that the compiler vectorizes. Written as `<= 0`, not `> 0`, so a
// NaN input passes its gradient on, as PyTorch's threshold_backward does. (Also a fused ReLU's,
// given its output for x: max(x, 0) <= 0 exactly where x <= 0, and NaN stays NaN.)
template <bool Fresh>
void relu_mask_add(const float* __restrict x, const float* __restrict g, float* __restrict dx,
                   std::size_t n) {
  if constexpr (Fresh) {
    // The select as a bit mask: g++ 12 vectorizes `dx[i] = x[i] <= 0 ? 0 : g[i]` in no form
    // ("control flow in loop"), only the select added to a value loaded from dx.
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint32_t keep = x[i] <= 0.0F ? 0U : 0xFFFFFFFFU;
      dx[i] = 0.0F + std::bit_cast<float>(std::bit_cast<std::uint32_t>(g[i]) & keep);
    }
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      const float gi = g[i];  // read unconditionally, or g++ will not vectorize the select
      dx[i] += x[i] <= 0.0F ? 0.0F : gi;
    }
  }
}

/// Records `name` with y[i] = f(x[i]).
template <class F>
Var unary_forward(const char* name, Var x, BackwardFn backward, F f) {
  Tape& tape = x.tape();
  Node& out = tape.record(name, {x}, x.shape(), backward);
  const float* in = x.value().data();
  float* y = out.own_value.data();
  elementwise_for(out.own_value.size(), [in, y, f](std::size_t begin, std::size_t end) {
    const F fn = f;
    const float* __restrict src = in;
    float* __restrict dst = y;
    for (std::size_t i = begin; i < end; ++i) dst[i] = fn(src[i]);
  });
  return tape.last();
}

/// dx[i] += keep(x[i], y[i]) ? g[i] * dfdx(x[i], y[i]) : 0: for the rules PyTorch writes as
/// where(mask, ..., 0) or masked_fill, which give 0 outside the mask even where g is NaN or
/// infinite (g * 0 would be NaN there).
template <class Keep, class D>
void unary_masked_backward(Tape& tape, const Node& node, Keep keep, D dfdx) {
  Node& x = input(tape, node, 0);
  if (!x.requires_grad) return;
  const float* in = x.value().data();
  const float* y = node.value().data();
  const float* g = node.grad().data();
  float* dx = x.grad().data();
  elementwise_for(node.value().size(), [in, y, g, dx, keep, dfdx](std::size_t begin, std::size_t end) {
    const Keep k = keep;
    const D d = dfdx;
    const float* __restrict px = in;
    const float* __restrict py = y;
    const float* __restrict pg = g;
    float* __restrict out = dx;
    for (std::size_t i = begin; i < end; ++i) out[i] += k(px[i], py[i]) ? pg[i] * d(px[i], py[i]) : 0.0F;
  });
}

/// dx[i] += g[i] * dfdx(x[i], y[i]).
template <class D>
void unary_backward(Tape& tape, const Node& node, D dfdx) {
  unary_masked_backward(tape, node, [](float, float) { return true; }, dfdx);
}

/// Records `name` with y[i] = f(a[i], b[i]); a and b have the same shape.
template <class F>
Var binary_forward(const char* name, Var a, Var b, BackwardFn backward, F f) {
  Tape& tape = a.tape();
  Node& out = tape.record(name, {a, b}, a.shape(), backward);
  const float* pa = a.value().data();
  const float* pb = b.value().data();
  float* y = out.own_value.data();
  elementwise_for(out.own_value.size(), [pa, pb, y, f](std::size_t begin, std::size_t end) {
    const F fn = f;
    const float* __restrict a0 = pa;
    const float* __restrict b0 = pb;
    float* __restrict dst = y;
    for (std::size_t i = begin; i < end; ++i) dst[i] = fn(a0[i], b0[i]);
  });
  return tape.last();
}

/// da[i] += g[i] * dfda(a[i], b[i], y[i]) and db[i] += g[i] * dfdb(a[i], b[i], y[i]). With
/// Masked, a derivative of 0 adds 0 rather than g * 0: for the rules PyTorch writes as
/// masked_fill (minimum, maximum), which give 0 there even for a NaN or infinite g.
template <bool Masked = false, class DA, class DB>
void binary_backward(Tape& tape, const Node& node, DA dfda, DB dfdb) {
  Node& a = input(tape, node, 0);
  Node& b = input(tape, node, 1);
  const float* pa = a.value().data();
  const float* pb = b.value().data();
  const float* y = node.value().data();
  const float* g = node.grad().data();
  const std::size_t n = node.value().size();
  // out[i] += g[i] * dfd(a[i], b[i], y[i]) for i in [begin, end)
  const auto add_product = [pa, pb, y, g](std::size_t begin, std::size_t end, float* out, auto dfd) {
    const float* __restrict a0 = pa;
    const float* __restrict b0 = pb;
    const float* __restrict y0 = y;
    const float* __restrict g0 = g;
    float* __restrict dst = out;
    for (std::size_t i = begin; i < end; ++i) {
      if constexpr (Masked) {
        const float d = dfd(a0[i], b0[i], y0[i]);
        dst[i] += d == 0.0F ? 0.0F : g0[i] * d;
      } else {
        dst[i] += g0[i] * dfd(a0[i], b0[i], y0[i]);
      }
    }
  };
  if (a.requires_grad) {
    float* da = a.grad().data();
    elementwise_for(n, [&](std::size_t begin, std::size_t end) { add_product(begin, end, da, dfda); });
  }
  if (b.requires_grad) {  // after a's loop: a and b may be one node (x * x)
    float* db = b.grad().data();
    elementwise_for(n, [&](std::size_t begin, std::size_t end) { add_product(begin, end, db, dfdb); });
  }
}

}  // namespace ag::detail
