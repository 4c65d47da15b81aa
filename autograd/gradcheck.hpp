// gradcheck: does an op's backward rule agree with its forward?
//
// For a function f of some arrays, it compares the gradient that backward computes with
// one measured from f alone by central finite differences, element by element, and
// reports the worst disagreement. The output is projected on fixed random weights w
// (L = sum w * f), so every output element takes part and a rule that is wrong for one
// output position cannot hide.
//
// The values are float32, so the difference quotient uses the fourth-order five-point
// stencil  f'(x) ~ [8 (L(x+h) - L(x-h)) - (L(x+2h) - L(x-2h))] / 12h  with a fairly large
// h = 2^-7 and sums L in double: truncation error O(h^4) ~ 1e-9 and rounding error
// ~1e-5 relative, so a correct rule passes at 1e-3 and a wrong one fails by orders of magnitude.
//
//   auto r = ag::gradcheck("mul", [](ag::Tape&, const std::vector<ag::Var>& x) {
//     return x[0] * x[1]; }, {a, b});
//   CHECK_MESSAGE(r.ok, r.message());
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "autograd/tape.hpp"

namespace ag {

struct GradcheckOptions {
  float step = 0x1.0p-7F;  // h; a power of two, so x +- h rounds by at most ulp(x)
  double rtol = 1e-3;      // pass when |analytic - numeric| <= atol + rtol * max(|analytic|, |numeric|)
  double atol = 1e-3;
  std::uint64_t seed = 12345;  // for the projection weights
};

struct GradcheckResult {
  bool ok = true;
  std::string op;
  std::size_t input = 0;       // which input has the worst element
  std::vector<std::size_t> index;  // of that element, one entry per dimension ([row, col] for a matrix)
  double analytic = 0.0, numeric = 0.0;
  double worst_ratio = 0.0;    // |a - n| / (atol + rtol max(|a|, |n|)); > 1 fails
  std::string message() const;
};

/// f builds its output on the given tape from leaves holding `inputs`.
using GradcheckFunction = std::function<Var(Tape&, const std::vector<Var>&)>;

GradcheckResult gradcheck(const std::string& op, const GradcheckFunction& f,
                          const std::vector<Array>& inputs, const GradcheckOptions& options = {});

}  // namespace ag
