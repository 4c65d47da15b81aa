// Windows over NCHW tensors: max_pool2d, avg_pool2d, and nearest-neighbour upsampling.
// Each image plane [H, W] is pooled on its own, so every loop below runs over the B*C planes.
//   max_pool2d          y = max of the window          dx[argmax] += g   (the first maximum)
//   avg_pool2d          y = sum of the window / kh kw  dx[window] += g / (kh kw)
//   upsample_nearest2d  y[i, j] = x[i / sh, j / sw]    dx[i, j] += sum of its sh x sw copies
// The max pool's backward finds the arg-max again from the input instead of keeping indices.
#include <limits>

#include <fmt/format.h>

#include "autograd/ops.hpp"
#include "autograd/ops/common.hpp"

namespace ag {
using detail::input;

namespace {

struct PoolAttrs {
  Size2 kernel, stride, padding;
};

/// Plane counts and sizes of a pooling's input and output.
struct PoolShape {
  std::size_t planes, h, w, out_h, out_w;
};

PoolShape pool_shape(const Shape& x, const Shape& y) { return {x[0] * x[1], x[2], x[3], y[2], y[3]}; }

/// Checks x and the window, fills in stride 0 as the kernel size, and records the node.
Node& record_pool(const char* op, Var x, PoolAttrs& a, BackwardFn backward) {
  if (x.dim() != 4) throw ShapeError(fmt::format("{}: input {} must be [B, C, H, W]", op, to_string(x.shape())));
  if (a.stride.h == 0) a.stride.h = a.kernel.h;
  if (a.stride.w == 0) a.stride.w = a.kernel.w;
  const Shape& s = x.shape();
  if (a.kernel.h == 0 || a.kernel.w == 0 || 2 * a.padding.h > a.kernel.h || 2 * a.padding.w > a.kernel.w ||
      s[2] + 2 * a.padding.h < a.kernel.h || s[3] + 2 * a.padding.w < a.kernel.w)
    throw ShapeError(fmt::format("{}: kernel ({}, {}) with padding ({}, {}) does not fit input {} (the padding "
                                 "may be at most half the kernel)",
                                 op, a.kernel.h, a.kernel.w, a.padding.h, a.padding.w, to_string(s)));
  const Shape out{s[0], s[1], (s[2] + 2 * a.padding.h - a.kernel.h) / a.stride.h + 1,
                  (s[3] + 2 * a.padding.w - a.kernel.w) / a.stride.w + 1};
  Node& node = x.tape().record(op, {x}, out, backward);
  node.set_attrs(a);
  return node;
}

/// The window of output (oh, ow) clipped to the input: rows [h0, h1), columns [w0, w1).
struct Window {
  std::size_t h0, h1, w0, w1;
};

Window window(const PoolAttrs& a, const PoolShape& p, std::size_t oh, std::size_t ow) {
  const std::size_t top = oh * a.stride.h, left = ow * a.stride.w;  // in padded coordinates
  return {top > a.padding.h ? top - a.padding.h : 0, std::min(p.h, top + a.kernel.h - a.padding.h),
          left > a.padding.w ? left - a.padding.w : 0, std::min(p.w, left + a.kernel.w - a.padding.w)};
}

/// The index in the plane of the window's first largest element (or first NaN).
std::size_t argmax(const float* plane, std::size_t width, const Window& win) {
  std::size_t best = win.h0 * width + win.w0;
  for (std::size_t i = win.h0; i < win.h1; ++i)
    for (std::size_t j = win.w0; j < win.w1; ++j)
      if (detail::beats(plane[i * width + j], plane[best])) best = i * width + j;
  return best;
}

}  // namespace

// ---- max_pool2d ----

static void max_pool2d_backward(Tape& t, const Node& n) {
  Node& x = input(t, n, 0);
  if (!x.requires_grad) return;
  const auto a = n.attrs<PoolAttrs>();
  const PoolShape p = pool_shape(x.value().shape(), n.value().shape());
  const float* g = n.grad().data();
  for (std::size_t q = 0; q < p.planes; ++q) {
    const float* in = x.value().data() + q * p.h * p.w;
    float* dx = x.grad().data() + q * p.h * p.w;
    for (std::size_t oh = 0; oh < p.out_h; ++oh)
      for (std::size_t ow = 0; ow < p.out_w; ++ow) dx[argmax(in, p.w, window(a, p, oh, ow))] += *g++;
  }
}

Var max_pool2d(Var x, Size2 kernel, Size2 stride, Size2 padding) {
  PoolAttrs a{kernel, stride, padding};
  Node& out = record_pool("max_pool2d", x, a, max_pool2d_backward);
  const PoolShape p = pool_shape(x.shape(), out.own_value.shape());
  float* y = out.own_value.data();
  for (std::size_t q = 0; q < p.planes; ++q) {
    const float* in = x.value().data() + q * p.h * p.w;
    for (std::size_t oh = 0; oh < p.out_h; ++oh)
      for (std::size_t ow = 0; ow < p.out_w; ++ow) *y++ = in[argmax(in, p.w, window(a, p, oh, ow))];
  }
  return x.tape().last();
}

// ---- avg_pool2d ----

static void avg_pool2d_backward(Tape& t, const Node& n) {
  Node& x = input(t, n, 0);
  if (!x.requires_grad) return;
  const auto a = n.attrs<PoolAttrs>();
  const PoolShape p = pool_shape(x.value().shape(), n.value().shape());
  const float scale = 1.0F / static_cast<float>(a.kernel.h * a.kernel.w);
  const float* g = n.grad().data();
  for (std::size_t q = 0; q < p.planes; ++q) {
    float* dx = x.grad().data() + q * p.h * p.w;
    for (std::size_t oh = 0; oh < p.out_h; ++oh)
      for (std::size_t ow = 0; ow < p.out_w; ++ow) {
        const Window win = window(a, p, oh, ow);
        const float share = *g++ * scale;
        for (std::size_t i = win.h0; i < win.h1; ++i)
          for (std::size_t j = win.w0; j < win.w1; ++j) dx[i * p.w + j] += share;
      }
  }
}

Var avg_pool2d(Var x, Size2 kernel, Size2 stride, Size2 padding) {
  PoolAttrs a{kernel, stride, padding};
  Node& out = record_pool("avg_pool2d", x, a, avg_pool2d_backward);
  const PoolShape p = pool_shape(x.shape(), out.own_value.shape());
  const double scale = 1.0 / static_cast<double>(a.kernel.h * a.kernel.w);
  float* y = out.own_value.data();
  for (std::size_t q = 0; q < p.planes; ++q) {
    const float* in = x.value().data() + q * p.h * p.w;
    for (std::size_t oh = 0; oh < p.out_h; ++oh)
      for (std::size_t ow = 0; ow < p.out_w; ++ow) {
        const Window win = window(a, p, oh, ow);
        double total = 0.0;
        for (std::size_t i = win.h0; i < win.h1; ++i)
          for (std::size_t j = win.w0; j < win.w1; ++j) total += in[i * p.w + j];
        *y++ = static_cast<float>(total * scale);
      }
  }
  return x.tape().last();
}

// ---- upsample_nearest2d ----

static void upsample_nearest2d_backward(Tape& t, const Node& n) {
  Node& x = input(t, n, 0);
  if (!x.requires_grad) return;
  const PoolShape p = pool_shape(x.value().shape(), n.value().shape());
  const auto scale = n.attrs<Size2>();
  const float* g = n.grad().data();
  for (std::size_t q = 0; q < p.planes; ++q) {
    float* dx = x.grad().data() + q * p.h * p.w;
    for (std::size_t oh = 0; oh < p.out_h; ++oh)
      for (std::size_t ow = 0; ow < p.out_w; ++ow) dx[(oh / scale.h) * p.w + ow / scale.w] += *g++;
  }
}

Var upsample_nearest2d(Var x, Size2 scale) {
  if (x.dim() != 4 || scale.h == 0 || scale.w == 0)
    throw ShapeError(fmt::format("upsample_nearest2d: input {} must be [B, C, H, W] and the scale ({}, {}) positive",
                                 to_string(x.shape()), scale.h, scale.w));
  const Shape& s = x.shape();
  Node& out = x.tape().record("upsample_nearest2d", {x}, {s[0], s[1], s[2] * scale.h, s[3] * scale.w},
                              upsample_nearest2d_backward);
  out.set_attrs(scale);
  const PoolShape p = pool_shape(s, out.own_value.shape());
  float* y = out.own_value.data();
  for (std::size_t q = 0; q < p.planes; ++q) {
    const float* in = x.value().data() + q * p.h * p.w;
    for (std::size_t oh = 0; oh < p.out_h; ++oh)
      for (std::size_t ow = 0; ow < p.out_w; ++ow) *y++ = in[(oh / scale.h) * p.w + ow / scale.w];
  }
  return x.tape().last();
}

}  // namespace ag
