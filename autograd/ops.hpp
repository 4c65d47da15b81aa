// Every differentiable op, declared in one place. Each is a free function that records a
// node on its inputs' tape and returns the result; its backward rule sits next to its
// forward in the file named on each section below (autograd/ops/<file>.cpp).
//
// Shapes are [rows, cols]; "B" is a batch size, "D" a feature count.
#pragma once

#include "autograd/random.hpp"
#include "autograd/tape.hpp"

namespace ag {

// ---- arithmetic.cpp: elementwise binary ops with broadcasting ----
// Two shapes broadcast when each dimension is equal or 1 in one of them; e.g.
// [B, D] with [1, D] (a row over the batch), [B, 1] (a column) or [1, 1] (a scalar).
// Broadcasting is an op of its own, so its gradient (a sum over the repeated
// dimensions) is written once, in broadcast_to's backward rule. (The one exception is the
// fused `linear`, which adds its bias row itself and sums the bias gradient in its rule.)

/// x repeated along its size-1 dimensions up to `shape`.   [1, D] -> [B, D]
Var broadcast_to(Var x, Shape shape);
Var add(Var a, Var b);  ///< a + b
Var sub(Var a, Var b);  ///< a - b
Var mul(Var a, Var b);  ///< a * b, elementwise
Var div(Var a, Var b);  ///< a / b, elementwise; division by zero follows IEEE 754 (inf, nan)
Var neg(Var x);         ///< -x
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
/// [M, K] x [K, N] -> [M, N]
Var matmul(Var a, Var b);
/// [M, N] -> [N, M]
Var transpose(Var x);
/// The fully connected layer in PyTorch's layout, fused into one node:
/// x [B, in], weight [out, in], bias [1, out] -> x weightᵀ + bias, [B, out].
Var linear(Var x, Var weight, Var bias);
/// Same without a bias.
Var linear(Var x, Var weight);

// ---- reductions.cpp ----
Var sum(Var x);             ///< all elements -> [1, 1]
Var sum(Var x, int axis);   ///< axis 0: [R, C] -> [1, C]; axis 1: [R, C] -> [R, 1]
Var mean(Var x);            ///< all elements -> [1, 1]
Var mean(Var x, int axis);  ///< as sum(x, axis) divided by the reduced count

// ---- shape.cpp ----
/// Same elements in row-major order, new shape of equal size.
Var reshape(Var x, Shape shape);
/// Columns [begin, end) of x: [R, C] -> [R, end - begin]. Splits a head's output in two.
Var slice(Var x, std::size_t begin, std::size_t end);
/// a's columns followed by b's: [R, Ca], [R, Cb] -> [R, Ca + Cb].
Var concat(Var a, Var b);

// ---- math.cpp: unary elementwise ----
Var exp(Var x);
/// Natural log. log(0) = -inf and log(x < 0) = nan, as IEEE 754 says; gradient 1/x.
Var log(Var x);
Var square(Var x);
/// sqrt(x < 0) = nan as IEEE 754 says; at 0 the gradient is +inf.
Var sqrt(Var x);

// ---- activations.cpp ----
Var relu(Var x);         ///< max(x, 0); gradient 0 at x = 0, as in PyTorch
Var sigmoid(Var x);      ///< 1 / (1 + e^-x), without overflow for large |x|
Var tanh(Var x);
Var softplus(Var x);     ///< log(1 + e^x) = max(x, 0) + log1p(e^-|x|)
Var log_sigmoid(Var x);  ///< log(sigmoid(x)) = -softplus(-x), finite for all finite x

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
