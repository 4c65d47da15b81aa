// Helpers op files share: reaching a node's inputs, the shape check of ops whose operands
// must match exactly, and the comparison of an arg-max.
#pragma once

#include <cmath>

#include <fmt/format.h>

#include "autograd/tape.hpp"

namespace ag::detail {

/// The k-th input of `node`, to read its value or add to its gradient.
inline Node& input(Tape& tape, const Node& node, int k) { return tape.node(node.inputs[k]); }

/// For an op that set writes_fresh on its node: whether its backward rule must write input k's
/// gradient (0 + its contribution) rather than add to it (see Tape::sweep_backward).
inline bool fresh(const Node& node, int k) { return ((node.fresh_inputs >> k) & 1U) != 0; }

/// Throws ShapeError unless a and b have the same shape.
inline void require_same_shape(const char* op, Var a, Var b) {
  if (a.shape() != b.shape())
    throw ShapeError(fmt::format("{}: shapes {} and {} must be equal", op, to_string(a.shape()),
                                 to_string(b.shape())));
}

/// Whether v takes an arg-max's place from the best so far: larger, or the first NaN, which
/// PyTorch's max_pool2d and argmax return (plain v > best passed over it: a NaN vanished).
inline bool beats(float v, float best) { return v > best || (std::isnan(v) && !std::isnan(best)); }

}  // namespace ag::detail
