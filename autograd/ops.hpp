// Every differentiable op, declared in one place. Each is a free function that records a
// node on its inputs' tape and returns the result; its backward rule sits next to its
// forward in the file named on each section below (autograd/ops/<file>.cpp).
//
// Tensors have any rank (1 to 8; shapes up to rank 4 are stored inline). "B" is a batch
// size, "D" a feature count, "..." any leading dimensions. Axes may be negative (counted
// from the end), as in PyTorch. Elementwise ops (math, activations, and the arithmetic ops
// once their operands are broadcast) give a result of their input's shape.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <span>

#include "autograd/random.hpp"
#include "autograd/tape.hpp"

namespace ag {

/// One axis or a list of axes: `1`, `{0, 2}`, `-1`.
class Axes {
 public:
  Axes(int axis) : n_(1) { axes_[0] = axis; }  // NOLINT: an int is one axis
  Axes(std::initializer_list<int> axes) : n_(std::min(axes.size(), kMaxRank)) {
    if (axes.size() > kMaxRank) throw ShapeError("Axes: more axes than the highest rank");
    std::copy(axes.begin(), axes.begin() + static_cast<long>(n_), axes_.begin());
  }
  const int* begin() const { return axes_.data(); }
  const int* end() const { return axes_.data() + n_; }
  std::size_t size() const { return n_; }

 private:
  std::array<int, kMaxRank> axes_{};
  std::size_t n_;
};

// ---- arithmetic.cpp: elementwise binary ops with broadcasting ----
// Shapes broadcast as in NumPy and PyTorch: aligned at their last dimension, the shorter
// one padded with 1s in front, each dimension equal or 1 in one of them; e.g. [B, D] with
// [1, D] or [D] (a row over the batch), [B, 1] (a column), [1, 1] (a scalar), and
// [B, C, H, W] with [C, 1, 1].
// Broadcasting is an op of its own, so its gradient (a sum over the repeated
// dimensions) is written once, in broadcast_to's backward rule. (The one exception is the
// fused `linear`, which adds its bias row itself and sums the bias gradient in its rule.)

/// x repeated along its size-1 (and missing leading) dimensions up to `shape`. [D] -> [B, D]
Var broadcast_to(Var x, const Shape& shape);
/// The shape two shapes broadcast to; ShapeError naming `op` if they do not.
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);
Var add(Var a, Var b);  ///< a + b
Var sub(Var a, Var b);  ///< a - b
Var mul(Var a, Var b);  ///< a * b, elementwise
Var div(Var a, Var b);  ///< a / b, elementwise; division by zero follows IEEE 754 (inf, nan)
Var neg(Var x);         ///< -x
/// min(a, b) and max(a, b), elementwise; at a tie each input gets half the gradient. A NaN on
/// either side is the result, and both inputs get the gradient there (as torch.minimum).
Var minimum(Var a, Var b);
Var maximum(Var a, Var b);
/// a where mask is nonzero, else b; all three broadcast. No gradient flows to the mask.
Var where(Var mask, Var a, Var b);
Var add_scalar(Var x, float c);  ///< x + c
Var mul_scalar(Var x, float c);  ///< x * c

Var operator+(Var a, Var b);
Var operator-(Var a, Var b);
Var operator*(Var a, Var b);
Var operator/(Var a, Var b);
Var operator-(Var x);
Var operator+(Var x, float c);
Var operator+(float c, Var x);
Var operator-(Var x, float c);
Var operator-(float c, Var x);
Var operator*(Var x, float c);
Var operator*(float c, Var x);
Var operator/(Var x, float c);
Var operator/(float c, Var x);

// ---- matmul.cpp ----
/// [M, K] x [K, N] -> [M, N]; batched as torch.matmul: [..., M, K] x [..., K, N] -> [..., M, N]
/// with the leading (batch) dimensions broadcast ([B, M, K] x [K, N] -> [B, M, N],
/// [2, 1, M, K] x [3, K, N] -> [2, 3, M, N]); a 1-D operand is a row [1, K] on the left, a
/// column [K, 1] on the right, and its dimension is dropped from the result ([M, K] x [K] -> [M]).
Var matmul(Var a, Var b);
struct LinearOptions {
  /// max(y, 0) on the output, with its mask in the backward: linear then relu in one op, with
  /// their bits, without the ReLU's node and passes over the activations (nn::Sequential fuses them).
  bool relu = false;
};
/// The fully connected layer in PyTorch's layout, fused into one node:
/// x [..., in], weight [out, in], bias [out] or [1, out] -> x weightᵀ + bias, [..., out].
Var linear(Var x, Var weight, Var bias, const LinearOptions& options = {});
/// Same without a bias.
Var linear(Var x, Var weight, const LinearOptions& options = {});

// ---- conv.cpp: convolutions on NCHW tensors, as torch.nn.functional's (groups = 1) ----
/// A size per spatial dimension (height, width); one number means both: `.stride = 2`,
/// `.padding = {1, 0}`.
struct Size2 {
  std::uint32_t h = 0, w = 0;
  constexpr Size2() = default;
  constexpr Size2(std::uint32_t both) : h(both), w(both) {}  // NOLINT: 2 means {2, 2}
  constexpr Size2(std::uint32_t height, std::uint32_t width) : h(height), w(width) {}
};
struct Conv2dOptions {
  Size2 stride = 1, padding = 0, dilation = 1;
  /// max(y, 0) on the output, with its mask in the backward: conv2d then relu in one op, with
  /// their bits, without the ReLU's two passes over the activations (nn::Sequential fuses them).
  bool relu = false;
};
/// x [B, C, H, W], weight [O, C, kh, kw], bias [O] -> [B, O, Ho, Wo] with
/// Ho = (H + 2 padding - dilation (kh - 1) - 1) / stride + 1 (rounded down), likewise Wo.
Var conv2d(Var x, Var weight, Var bias, const Conv2dOptions& options = {});
Var conv2d(Var x, Var weight, const Conv2dOptions& options = {});
struct ConvTranspose2dOptions {
  Size2 stride = 1, padding = 0, output_padding = 0, dilation = 1;
  bool relu = false;  ///< as Conv2dOptions::relu
};
/// The adjoint of conv2d in x (its gradient as an op): x [B, C, H, W], weight [C, O, kh, kw]
/// (PyTorch's layout), bias [O] -> [B, O, Ho, Wo] with
/// Ho = (H - 1) stride - 2 padding + dilation (kh - 1) + output_padding + 1, likewise Wo.
Var conv_transpose2d(Var x, Var weight, Var bias, const ConvTranspose2dOptions& options = {});
Var conv_transpose2d(Var x, Var weight, const ConvTranspose2dOptions& options = {});

// ---- pooling.cpp: windows over NCHW tensors (floor mode); stride 0 means the kernel size ----
/// The largest element of each window (padding never wins; a NaN wins, as in PyTorch); its
/// gradient goes to that element, the first one at a tie.   [B, C, H, W] -> [B, C, Ho, Wo]
Var max_pool2d(Var x, Size2 kernel, Size2 stride = 0, Size2 padding = 0);
/// The mean of each window, padding counted as zeros (PyTorch's count_include_pad).
Var avg_pool2d(Var x, Size2 kernel, Size2 stride = 0, Size2 padding = 0);
/// Each pixel repeated scale times along each axis.   [B, C, H, W] -> [B, C, H sh, W sw]
Var upsample_nearest2d(Var x, Size2 scale);

// ---- reductions.cpp: over a list of axes; keepdim keeps them with size 1 ----
// [2, 3, 4] over {0, 2} -> [3], or [1, 3, 1] with keepdim. Sums accumulate in double.
Var sum(Var x);   ///< all elements -> a one-element tensor of x's rank ([1, 1] for a matrix)
Var sum(Var x, Axes axes, bool keepdim = false);
Var mean(Var x);  ///< all elements -> as sum(x)
Var mean(Var x, Axes axes, bool keepdim = false);
/// The largest element (NaN if any is NaN); its gradient is shared evenly by the elements equal
/// to it, as torch.amax does (and a NaN maximum gives each element a NaN gradient, as amax's).
Var max(Var x, Axes axes, bool keepdim = false);
/// The smallest element; its gradient as max's, as torch.amin does.
Var min(Var x, Axes axes, bool keepdim = false);
/// The variance, sum((x - mean)^2) / max(0, count - correction): correction 1 (Bessel's,
/// PyTorch's default) or 0 (the population's); NaN for a single element with correction 1, as
/// in PyTorch (inf, or NaN, for a correction at or beyond the count). Its gradient is PyTorch's
/// 2 / (count - correction) * g * (x - mean), which divides by count - correction even there.
Var var(Var x, Axes axes, bool keepdim = false, int correction = 1);
/// sqrt(var(x, axes, keepdim, correction)); its gradient is 0 where every element is equal (as
/// PyTorch's, which masks the 1 / 0 of sqrt's there).
Var std(Var x, Axes axes, bool keepdim = false, int correction = 1);
/// log(sum(exp(x))) over the axes, shifted by the maximum so it never overflows.
Var logsumexp(Var x, Axes axes, bool keepdim = false);

// ---- shape.cpp: ops that move elements; each gradient moves back where it came from ----
/// Same elements in row-major order, new shape of equal size. (view is the same op.)
Var reshape(Var x, const Shape& shape);
Var view(Var x, const Shape& shape);
/// Dimensions start..end (inclusive) merged into one.   [B, C, H, W] -> [B, C*H*W] (start 1)
Var flatten(Var x, int start = 0, int end = -1);
/// A size-1 dimension inserted at `axis` (of the result).   [B, D] -> [B, 1, D] (axis 1)
Var unsqueeze(Var x, int axis);
/// Dimension `axis` removed if its size is 1 (otherwise x unchanged, as in PyTorch).
Var squeeze(Var x, int axis);
/// Dimensions reordered: result dimension d is x's dimension dims[d].
Var permute(Var x, std::span<const int> dims);
Var permute(Var x, std::initializer_list<int> dims);
/// Dimensions a and b swapped.
Var transpose(Var x, int a, int b);
/// The last two dimensions swapped: [M, N] -> [N, M].
Var transpose(Var x);
/// Indices [begin, end) along `axis`.   [B, D] -> [B, end - begin] (axis 1). As Python's
/// x[:, begin:end] in PyTorch: a range past the end is cut to it, an empty one (begin >= end)
/// gives an empty result.
Var slice(Var x, int axis, std::size_t begin, std::size_t end);
/// Columns [begin, end) of a matrix (the last axis). Splits a head's output in two.
Var slice(Var x, std::size_t begin, std::size_t end);
/// The inputs joined along `axis`; every other dimension must agree. Any number of inputs.
Var concat(std::span<const Var> xs, int axis);
Var concat(std::initializer_list<Var> xs, int axis);
/// a's columns followed by b's: [R, Ca], [R, Cb] -> [R, Ca + Cb] (the last axis).
Var concat(Var a, Var b);
/// The inputs (all of one shape) stacked along a new dimension `axis`.   N x [B, D] -> [B, N, D] (axis 1)
Var stack(std::span<const Var> xs, int axis);
Var stack(std::initializer_list<Var> xs, int axis);
/// Entries `indices` (a 1-D tensor of whole numbers, repeats allowed) along `axis`:
/// [N, D] with [K] -> [K, D] (axis 0). The gradient adds up over repeated indices.
Var index_select(Var x, int axis, Var indices);
/// out[i][j] = x[i][index[i][j]] for axis 1 (PyTorch's gather): index has x's rank and, off
/// `axis`, sizes at most x's; the result has index's shape. The gradient scatter-adds.
Var gather(Var x, int axis, Var index);

// ---- math.cpp: unary elementwise ----
Var exp(Var x);
/// Natural log. log(0) = -inf and log(x < 0) = nan, as IEEE 754 says; gradient 1/x.
Var log(Var x);
Var log1p(Var x);  ///< log(1 + x), without the rounding of 1 + x for small x
Var expm1(Var x);  ///< e^x - 1, without the cancellation for small x
Var square(Var x);
/// sqrt(x < 0) = nan as IEEE 754 says; at 0 the gradient is +inf.
Var sqrt(Var x);
Var rsqrt(Var x);       ///< 1 / sqrt(x); gradient -1 / (2 x^1.5)
Var reciprocal(Var x);  ///< 1 / x; gradient -1 / x^2
Var sin(Var x);
Var cos(Var x);
/// x^p for a constant exponent; gradient p x^(p-1) (0 for p = 0).
Var pow(Var x, float p);
/// |x|; gradient sign(x), 0 at 0.
Var abs(Var x);
/// x limited to [lo, hi]; the gradient is zero outside. lo above hi gives hi (as torch.clamp).
Var clamp(Var x, float lo, float hi);

// ---- activations.cpp ----
Var relu(Var x);         ///< max(x, 0); gradient 0 at x = 0, as in PyTorch
Var sigmoid(Var x);      ///< 1 / (1 + e^-x), without overflow for large |x|
Var tanh(Var x);
Var softplus(Var x);     ///< log(1 + e^x) = max(x, 0) + log1p(e^-|x|)
Var log_sigmoid(Var x);  ///< log(sigmoid(x)) = -softplus(-x), finite for all finite x
Var leaky_relu(Var x, float negative_slope = 0.01F);  ///< x, or negative_slope x below 0
Var elu(Var x, float alpha = 1.0F);  ///< x, or alpha (e^x - 1) below 0
Var gelu(Var x);  ///< x Phi(x), Phi the standard normal CDF (PyTorch's exact form)
Var silu(Var x);  ///< x sigmoid(x) (also called swish)

// ---- softmax.cpp: along one axis, shifted by the maximum so nothing overflows ----
Var softmax(Var x, int axis = -1);
Var log_softmax(Var x, int axis = -1);

// ---- dropout.cpp ----
/// Training: each element zeroed with probability p, the rest scaled by 1/(1-p) (the mask is
/// drawn from rng and kept on the node). Evaluation, or p = 0: x itself, no node.
Var dropout(Var x, float p, Rng& rng, bool training);

// ---- normalization.cpp (composed of the ops above, so the gradient needs no new rule) ----
/// Normalised over the last `dims` dimensions (PyTorch's normalized_shape), then * weight +
/// bias (each of the shape of those dimensions; pass Var() for none).
/// [..., D] -> [..., D];  dims 2: [..., H, W] -> [..., H, W] with weight [H, W]
Var layer_norm(Var x, Var weight, Var bias, float eps = 1e-5F, std::size_t dims = 1);
/// x [B, C] normalised per column, or [B, C, L] per channel (over B and L), as PyTorch's
/// BatchNorm1d. Training: with the batch's mean and (biased) variance, the gradient flowing
/// through them, and running_mean / running_var ([C]) updated with `momentum` and the
/// unbiased variance, as PyTorch. Evaluation: with the running statistics. weight, bias [C].
Var batch_norm(Var x, Array& running_mean, Array& running_var, Var weight, Var bias, bool training,
               float momentum = 0.1F, float eps = 1e-5F);

// ---- labels.cpp: no gradient ----
/// Class indices [B] (whole numbers) -> [B, num_classes] of 0 and 1.
Var one_hot(Var indices, std::size_t num_classes);
/// The index of the first maximum (or NaN, as torch.argmax) along `axis`, as a float tensor.
/// [B, C] -> [B] (axis 1)
Var argmax(Var x, int axis, bool keepdim = false);

// ---- losses.cpp ----
/// How a loss folds its elementwise values. `batch_mean` sums over everything and divides
/// by the number of rows: per-example loss summed over features, as VAEs report it.
enum class Reduction { none, sum, mean, batch_mean };

/// Binary cross-entropy of sigmoid(logits) against targets in [0, 1], computed from the
/// logits as softplus(l) - l * t, which never takes log(0).   [B, D], [B, D]
Var bce_with_logits(Var logits, Var targets, Reduction reduction = Reduction::mean);
/// (prediction - target)^2.   [B, D], [B, D]
Var mse_loss(Var prediction, Var target, Reduction reduction = Reduction::mean);
/// Negative log-likelihood of x under N(mean, exp(logvar)):
/// 0.5 * (log(2 pi) + logvar + (x - mean)^2 / exp(logvar)). logvar broadcasts to x's shape
/// ([B, D], [1, D] for a learned per-feature variance, or [1, 1]).
Var gaussian_nll(Var x, Var mean, Var logvar, Reduction reduction = Reduction::mean);

// ---- softmax.cpp: classification losses; class indices are a [B] tensor of whole numbers ----
/// -log softmax(logits)[target] per example (softmax over dimension 1, as in PyTorch); with
/// label_smoothing e the target distribution is (1 - e) one_hot + e / C. mean divides by the
/// number of targets, batch_mean by B.   [B, C], [B] -> [B] or [1, 1];
/// per position: [B, C, d1, ...], [B, d1, ...] -> [B, d1, ...] or [1, 1]
Var cross_entropy(Var logits, Var targets, Reduction reduction = Reduction::mean, float label_smoothing = 0.0F);
/// -log_probs[target] per example.   [B, C], [B] -> [B];  [B, C, d1, ...], [B, d1, ...] -> [B, d1, ...]
Var nll_loss(Var log_probs, Var targets, Reduction reduction = Reduction::mean);

// ---- kl.cpp ----
/// KL( N(mu, exp(logvar)) || N(0, 1) ) per element: -0.5 * (1 + logvar - mu^2 - exp(logvar)).
/// Taking the log-variance keeps it defined for any real input.   [B, Z], [B, Z]
Var kl_to_standard_normal(Var mu, Var logvar, Reduction reduction = Reduction::mean);

// ---- reparameterize.cpp: the Gaussian sampling node ----
/// z = mu + exp(logvar / 2) * eps with eps ~ N(0, 1) drawn from `rng`. The noise is held
/// fixed by the node, so the gradient flows to mu and logvar only.   [B, Z], [B, Z] -> [B, Z]
Var reparameterize(Var mu, Var logvar, Rng& rng);
/// Same with the noise given (tests, or decoding a fixed set of latent draws).
Var reparameterize(Var mu, Var logvar, const Array& eps);

}  // namespace ag
