// The tape: reverse-mode automatic differentiation in one sweep.
//
// Every op appends a Node to the tape in execution order. A node holds its output value,
// the indices of its inputs on the tape, and a pointer to its backward rule. Because the
// record is already in execution order, `backward(loss)` needs no graph search: it seeds
// d loss / d loss = 1 and walks the record once from the end to the start, and each
// node's rule adds its contribution into its inputs' gradients. No recursion, so a chain
// of a million ops is as safe as a chain of ten.
//
// Storage is recycled: `reset()` forgets the record but keeps every node and its buffers,
// so the next step of a training loop writes into the same memory again.
//
//   ag::Tape tape;
//   ag::Var x = tape.variable(ag::Array{{1, 2, 3}});   // a leaf that wants a gradient
//   ag::Var y = ag::sum(x * x);
//   tape.backward(y);                                  // x.grad() == {{2, 4, 6}}
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <iosfwd>
#include <string>

#include "autograd/array.hpp"
#include "autograd/parameter.hpp"

namespace ag {

class Tape;
struct Node;

/// A backward rule: reads the node's gradient (d loss / d output) and adds
/// d loss / d input into each input that requires a gradient.
using BackwardFn = void (*)(Tape& tape, const Node& node);

/// One recorded operation (or a leaf, which has no inputs and no backward rule).
struct Node {
  const char* op = "";                 // the op's name, for printing and error messages
  std::array<std::uint32_t, 3> inputs{};
  std::uint8_t arity = 0;              // how many entries of `inputs` are used
  bool requires_grad = false;          // does any gradient flow through this node?
  bool reached = false;                // during backward: has a gradient arrived here yet?
  std::uint32_t grad_pass = 0;         // the backward pass that last wrote own_grad
  BackwardFn backward = nullptr;       // nullptr for leaves
  float scalar = 0.0F;                 // attribute of ops with a constant (pow 2, add 3, ...)
  std::array<std::size_t, 2> attr{};   // integer attributes (axis, slice bounds, ...)

  Array own_value;                     // the output, unless the node is a parameter leaf
  Array own_grad;
  Array saved;                         // what a backward rule needs beyond inputs and output
  Parameter* parameter = nullptr;      // set for leaves that stand for a model parameter

  Array& value() { return parameter ? parameter->value : own_value; }
  const Array& value() const { return parameter ? parameter->value : own_value; }
  Array& grad() { return parameter ? parameter->grad : own_grad; }
  const Array& grad() const { return parameter ? parameter->grad : own_grad; }
};

/// A handle to a node on a tape: cheap to copy, valid until the tape is reset.
class Var {
 public:
  Var() = default;

  const Array& value() const;
  /// d root / d this from the tape's latest backward. Throws std::logic_error if this node
  /// requires no gradient or that backward did not reach it (it does not affect the root).
  const Array& grad() const;
  /// Whether grad() has a value: the latest backward reached this node.
  bool has_grad() const;
  Shape shape() const { return shape_of(value()); }
  std::size_t rows() const { return value().shape()[0]; }
  std::size_t cols() const { return value().shape()[1]; }
  /// The value of a [1, 1] variable.
  float item() const;
  bool requires_grad() const;

  Tape& tape() const;
  std::uint32_t index() const { return index_; }
  bool valid() const;

 private:
  friend class Tape;
  Var(Tape* tape, std::uint32_t index, std::uint32_t generation)
      : tape_(tape), index_(index), generation_(generation) {}
  const Node& node() const;

  Tape* tape_ = nullptr;
  std::uint32_t index_ = 0;
  std::uint32_t generation_ = 0;  // which recording this handle belongs to (see reset)
};

/// What Tape::print and Tape::to_dot show beyond each node's op, inputs and shape.
///   tape.print(std::cout, {.values = true, .grads = true});
struct PrintOptions {
  bool values = false;           // each node's value
  bool grads = false;            // each gradient the latest backward computed
  std::size_t max_elements = 8;  // a larger array shows its first few elements and its size
};

class Tape {
 public:
  Tape() = default;
  Tape(const Tape&) = delete;             // nodes refer to each other by index on *this* tape
  Tape& operator=(const Tape&) = delete;

  // ---- leaves ----
  /// A leaf holding a copy of `value`; after backward, its grad() is d root / d value.
  /// (Inside a NoGradGuard it requires no gradient, like every other node.)
  Var variable(const Array& value, bool requires_grad = true);
  /// A leaf that never needs a gradient (data, targets).
  Var constant(const Array& value) { return variable(value, false); }
  /// A leaf that stands for a model parameter: no copy is made, and backward
  /// accumulates into `p.grad` (so call zero_grad between steps, as in PyTorch).
  Var parameter(Parameter& p);

  // ---- recording, used by ops ----
  /// Appends a node with the given inputs and output shape and returns it, with
  /// `requires_grad` set from the inputs (and false inside a NoGradGuard).
  /// The output buffer is reused from earlier steps when the shape allows.
  Node& record(const char* op, std::initializer_list<Var> inputs, Shape out_shape,
               BackwardFn backward);
  /// The handle of the most recently recorded node.
  Var last();

  Node& node(std::uint32_t index) { return nodes_[index]; }
  const Node& node(std::uint32_t index) const { return nodes_[index]; }
  Node& node(Var v) { return nodes_[v.index()]; }
  const Node& node(Var v) const { return nodes_[v.index()]; }

  // ---- differentiation ----
  /// Seeds d root / d root = 1 (root must be [1, 1]) and sweeps the record backward.
  void backward(Var root);
  /// Same, with an explicit seed of root's shape: computes the vector-Jacobian product.
  void backward(Var root, const Array& seed);

  /// Forgets the record; handles taken before are invalid afterwards. Buffers are kept.
  void reset();

  // ---- introspection ----
  std::size_t size() const { return size_; }
  /// Number of nodes ever allocated (the tape's high-water mark).
  std::size_t capacity() const { return nodes_.size(); }
  /// Bytes held by every node's buffers, recorded or not.
  std::size_t bytes_reserved() const;
  /// One line per node: index, op, inputs, shape (and values and gradients if asked).
  void print(std::ostream& out, const PrintOptions& options = {}) const;
  /// The recorded graph in Graphviz DOT (`dot -Tpng`), labelled as print's lines.
  std::string to_dot(const PrintOptions& options = {}) const;

  bool grad_enabled() const { return grad_enabled_; }

 private:
  friend class NoGradGuard;
  friend class Var;
  Node& next_node();
  bool has_latest_grad(const Node& n) const;
  std::string describe_data(const Node& n, const PrintOptions& options,
                            const char* separator) const;
  void sweep_backward(std::uint32_t root);

  std::deque<Node> nodes_;  // a deque: references stay valid while the tape grows
  std::uint32_t size_ = 0;
  std::uint32_t generation_ = 1;
  std::uint32_t backward_pass_ = 0;  // counts backward calls; see Node::grad_pass
  bool grad_enabled_ = true;
};

/// Inside its scope nothing on `tape` requires a gradient: ops still compute their
/// values (so evaluation code reads like training code) but keep no backward rule.
///
///   { ag::NoGradGuard no_grad(tape); auto test_loss = model.loss(batch); }
class NoGradGuard {
 public:
  explicit NoGradGuard(Tape& tape) : tape_(tape), previous_(tape.grad_enabled_) {
    tape.grad_enabled_ = false;
  }
  ~NoGradGuard() { tape_.grad_enabled_ = previous_; }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  Tape& tape_;
  bool previous_;
};

/// Resizes `a` to `s` without reallocating when the element count is unchanged, and
/// fills it with zeros.
void zero_as(Array& a, Shape s);

}  // namespace ag
