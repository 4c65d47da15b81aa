#include "nn/conv.hpp"

#include <cmath>
#include <stdexcept>
#include <type_traits>
#include <typeinfo>

#include <fmt/format.h>

#include "nn/activation.hpp"
#include "nn/init.hpp"

namespace nn {

namespace {

/// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) of the given shape, with fan_in = shape[1] kh kw.
ag::Array uniform_fan_in(const ag::Shape& shape, std::size_t fan_in, ag::Rng& rng, const char* layer) {
  if (fan_in == 0) throw std::invalid_argument(fmt::format("{}: channels and kernel size must be positive", layer));
  const auto bound = static_cast<float>(1.0 / std::sqrt(static_cast<double>(fan_in)));
  ag::Array a(shape);
  init::uniform(a, rng, -bound, bound);
  return a;
}

ag::Parameter* make_bias(Module& m, std::size_t out, std::size_t fan_in, ag::Rng& rng, bool with_bias,
                         const char* layer) {
  if (!with_bias) return nullptr;
  return &m.register_parameter("bias", uniform_fan_in({out}, fan_in, rng, layer));
}

/// The layer's op (conv2d for Conv2dOptions, conv_transpose2d for ConvTranspose2dOptions) on x
/// with options o, its parameters on x's tape, the weight recorded before the bias on every
/// compiler (the order of a call's arguments is unspecified).
template <class Options>
ag::Var convolve(ag::Var x, ag::Parameter& weight, ag::Parameter* bias, const Options& o) {
  const auto op = [&o](ag::Var in, ag::Var w, const ag::Var* b) {
    if constexpr (std::is_same_v<Options, ag::Conv2dOptions>)
      return b ? ag::conv2d(in, w, *b, o) : ag::conv2d(in, w, o);
    else
      return b ? ag::conv_transpose2d(in, w, *b, o) : ag::conv_transpose2d(in, w, o);
  };
  ag::Tape& tape = x.tape();
  ag::Var w = tape.parameter(weight);
  if (!bias) return op(x, w, nullptr);
  ag::Var b = tape.parameter(*bias);
  return op(x, w, &b);
}

/// The options with the ReLU that follows the op fused into it.
template <class Options>
Options with_relu(Options o) {
  o.relu = true;
  return o;
}

/// Whether `next` is a plain ReLU (not a subclass, whose forward may differ).
bool is_relu(const Module& next) { return typeid(next) == typeid(ReLU); }

std::string pair(ag::Size2 s) { return fmt::format("({}, {})", s.h, s.w); }

/// PyTorch's repr: the options that differ from their defaults, in its order.
std::string conv_repr(const char* layer, const ag::Parameter& weight, bool transposed, ag::Size2 stride,
                      ag::Size2 padding, ag::Size2 output_padding, ag::Size2 dilation, bool bias) {
  const ag::Shape& w = weight.value.shape();
  const std::size_t in = transposed ? w[0] : w[1], out = transposed ? w[1] : w[0];
  std::string text = fmt::format("{}({}, {}, kernel_size=({}, {}), stride={}", layer, in, out, w[2], w[3], pair(stride));
  if (padding.h || padding.w) text += ", padding=" + pair(padding);
  if (dilation.h != 1 || dilation.w != 1) text += ", dilation=" + pair(dilation);
  if (output_padding.h || output_padding.w) text += ", output_padding=" + pair(output_padding);
  if (!bias) text += ", bias=False";
  return text + ")";
}

}  // namespace

// The weight is drawn before the bias, as in PyTorch (the draws themselves differ: another generator).
Conv2d::Conv2d(std::size_t in, std::size_t out, ag::Size2 k, ag::Rng& rng, const ag::Conv2dOptions& o, bool with_bias)
    : weight(register_parameter("weight", uniform_fan_in({out, in, k.h, k.w}, in * k.h * k.w, rng, "Conv2d"))),
      bias(make_bias(*this, out, in * k.h * k.w, rng, with_bias, "Conv2d")),
      options(o) {}

ag::Var Conv2d::forward(ag::Var x) { return convolve(x, weight, bias, options); }

ag::Var Conv2d::forward_fused(ag::Var x, const Module& next) {
  if (!is_relu(next)) return {};
  return convolve(x, weight, bias, with_relu(options));
}

std::string Conv2d::describe() const {
  return conv_repr("Conv2d", weight, false, options.stride, options.padding, 0, options.dilation, bias != nullptr);
}

ConvTranspose2d::ConvTranspose2d(std::size_t in, std::size_t out, ag::Size2 k, ag::Rng& rng,
                                 const ag::ConvTranspose2dOptions& o, bool with_bias)
    : weight(register_parameter("weight",
                                uniform_fan_in({in, out, k.h, k.w}, out * k.h * k.w, rng, "ConvTranspose2d"))),
      bias(make_bias(*this, out, out * k.h * k.w, rng, with_bias, "ConvTranspose2d")),
      options(o) {}

ag::Var ConvTranspose2d::forward(ag::Var x) { return convolve(x, weight, bias, options); }

ag::Var ConvTranspose2d::forward_fused(ag::Var x, const Module& next) {
  if (!is_relu(next)) return {};
  return convolve(x, weight, bias, with_relu(options));
}

std::string ConvTranspose2d::describe() const {
  return conv_repr("ConvTranspose2d", weight, true, options.stride, options.padding, options.output_padding,
                   options.dilation, bias != nullptr);
}

}  // namespace nn
