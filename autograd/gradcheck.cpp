#include "autograd/gradcheck.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <xtensor/xbuilder.hpp>

#include "autograd/random.hpp"

namespace ag {

std::string GradcheckResult::message() const {
  return fmt::format(
      "gradcheck {}: {} at input {} element [{}]: analytic {:.7g}, numeric {:.7g} "
      "(error {:.3g} of tolerance)",
      op, ok ? "passed; worst" : "FAILED", input, fmt::join(index, ", "), analytic, numeric, worst_ratio);
}

// The multi-index of element e of a row-major array of this shape.
static std::vector<std::size_t> index_of(std::size_t e, const Shape& shape) {
  std::vector<std::size_t> index(shape.size());
  for (std::size_t d = shape.size(); d-- > 0;) {
    index[d] = shape[d] ? e % shape[d] : 0;
    e = shape[d] ? e / shape[d] : 0;
  }
  return index;
}

// L = sum(w * f(inputs)) in double.
static double projected(Tape& tape, const GradcheckFunction& f, const std::vector<Array>& inputs,
                        const Array& w) {
  tape.reset();
  std::vector<Var> leaves;
  for (const Array& a : inputs) leaves.push_back(tape.variable(a));
  const Array& y = f(tape, leaves).value();
  double total = 0.0;
  for (std::size_t i = 0; i < y.size(); ++i) total += static_cast<double>(w.data()[i]) * y.data()[i];
  return total;
}

GradcheckResult gradcheck(const std::string& op, const GradcheckFunction& f,
                          const std::vector<Array>& inputs, const GradcheckOptions& options) {
  Tape tape;
  std::vector<Var> leaves;
  for (const Array& a : inputs) leaves.push_back(tape.variable(a));
  Var y = f(tape, leaves);
  Array w(y.value().shape());
  Rng rng(options.seed);
  rng.fill_uniform(w, 0.5F, 1.5F);
  for (float& v : w) v *= rng.uniform() < 0.5F ? -1.0F : 1.0F;
  tape.backward(y, w);
  std::vector<Array> analytic;
  for (const Var& leaf : leaves)  // an input the output does not depend on has gradient zero
    analytic.push_back(leaf.has_grad() ? Array(leaf.grad()) : Array(xt::zeros<float>(leaf.value().shape())));

  GradcheckResult result;
  result.op = op;
  const double h = options.step;
  std::vector<Array> x = inputs;
  for (std::size_t k = 0; k < x.size(); ++k) {
    for (std::size_t e = 0; e < x[k].size(); ++e) {
      const float original = x[k].data()[e];
      auto at = [&](double offset) {
        x[k].data()[e] = static_cast<float>(original + offset);
        return projected(tape, f, x, w);
      };
      const double numeric = (8.0 * (at(h) - at(-h)) - (at(2 * h) - at(-2 * h))) / (12.0 * h);
      x[k].data()[e] = original;
      const double a = analytic[k].data()[e];
      double ratio =
          std::abs(a - numeric) / (options.atol + options.rtol * std::max(std::abs(a), std::abs(numeric)));
      if (std::isnan(ratio)) ratio = HUGE_VAL;  // a NaN on either side is the worst case
      if ((k == 0 && e == 0) || ratio > result.worst_ratio)
        result = {false, op, k, index_of(e, x[k].shape()), a, numeric, ratio};
    }
  }
  result.ok = result.worst_ratio <= 1.0;
  return result;
}

}  // namespace ag
