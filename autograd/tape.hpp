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

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iosfwd>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "autograd/array.hpp"
#include "autograd/parameter.hpp"

namespace ag {

class Tape;
struct Node;

/// A backward rule: reads the node's gradient (d loss / d output) and adds
/// d loss / d input into each input that requires a gradient.
using BackwardFn = void (*)(Tape& tape, const Node& node);

/// The most inputs one node takes (concat of more is a tree of concats).
inline constexpr std::size_t kMaxInputs = 8;
/// Room for an op's attributes on its node.
inline constexpr std::size_t kAttrBytes = 64;

/// One recorded operation (or a leaf, which has no inputs and no backward rule).
/// The fields that recording and the backward sweep read for every node come first and fill
/// one cache line (the node is aligned to one): a 1-element op costs a few tens of
/// nanoseconds, and each further line it touches is a noticeable part of that.
struct alignas(64) Node {
  const char* op = "";                 // the op's name, for printing and error messages
  std::array<std::uint32_t, kMaxInputs> inputs{};
  std::uint8_t arity = 0;              // how many entries of `inputs` are used
  bool requires_grad = false;          // does any gradient flow through this node?
  bool writes_fresh = false;           // the op's backward rule honours fresh_inputs (below)
  std::uint8_t fresh_inputs = 0;       // bit k: input k's gradient was not zeroed and must be
                                       // written, not added to (see Tape::sweep_backward)
  std::uint32_t grad_pass = 0;         // the backward pass that last reached this node: its
                                       // gradient is current iff this is the tape's latest pass
  BackwardFn backward = nullptr;       // nullptr for leaves
  Parameter* parameter = nullptr;      // set for leaves that stand for a model parameter

  Array own_value;                     // the output, unless the node is a parameter leaf
  Array own_grad;
  Array saved;                         // what a backward rule needs beyond inputs and output
  mutable Array scratch;               // working memory of an op's forward and backward (a rule
                                       // sees its node as const; the buffer is kept between steps)

  Array& value() { return parameter ? parameter->value : own_value; }
  const Array& value() const { return parameter ? parameter->value : own_value; }
  Array& grad() { return parameter ? parameter->grad : own_grad; }
  const Array& grad() const { return parameter ? parameter->grad : own_grad; }

  /// An op's settings, by name: each op declares a small struct beside its forward
  /// (`struct SliceAttrs { int axis; std::size_t begin, end; };`), the forward stores it
  /// with set_attrs and the backward rule reads it back with attrs<SliceAttrs>(). The bytes
  /// live in the node, so this costs no allocation.
  template <class A>
  void set_attrs(const A& a) {
    static_assert(std::is_trivially_copyable_v<A> && sizeof(A) <= kAttrBytes,
                  "op attributes must be a small trivially copyable struct");
    std::memcpy(attr_bytes_.data(), &a, sizeof(A));
  }
  template <class A>
  A attrs() const {
    static_assert(std::is_trivially_copyable_v<A> && sizeof(A) <= kAttrBytes,
                  "op attributes must be a small trivially copyable struct");
    A a;
    std::memcpy(&a, attr_bytes_.data(), sizeof(A));
    return a;
  }

 private:
  alignas(8) std::array<std::byte, kAttrBytes> attr_bytes_{};
};

/// The tape's nodes, in blocks that never move: a reference to a node stays valid while the
/// tape grows, and finding node i is a shift and a mask. (A std::deque of nodes this large
/// keeps one node per block, and its indexing took a third of a 1-element op's lookups.)
class NodeBlocks {
 public:
  static constexpr std::uint32_t kBlockShift = 5;  // 32 nodes a block
  static constexpr std::uint32_t kBlock = 1U << kBlockShift;

  Node& operator[](std::uint32_t i) { return blocks_[i >> kBlockShift][i & (kBlock - 1)]; }
  const Node& operator[](std::uint32_t i) const { return blocks_[i >> kBlockShift][i & (kBlock - 1)]; }
  /// Nodes handed out so far (the high-water mark), and those allocated (whole blocks).
  std::uint32_t size() const { return size_; }
  std::size_t allocated() const { return blocks_.size() * kBlock; }
  /// One more node: the next of the last block, or the first of a new one.
  Node& grow() {
    if ((size_ & (kBlock - 1)) == 0) blocks_.push_back(std::make_unique<Node[]>(kBlock));
    return (*this)[size_++];
  }

 private:
  std::vector<std::unique_ptr<Node[]>> blocks_;
  std::uint32_t size_ = 0;
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
  const Shape& shape() const { return value().shape(); }
  /// The rank: 2 for a matrix.
  std::size_t dim() const { return value().dimension(); }
  std::size_t numel() const { return value().size(); }
  /// For a matrix [rows, cols]: its first and its last dimension.
  std::size_t rows() const { return value().shape().front(); }
  std::size_t cols() const { return value().shape().back(); }
  /// The value of a one-element variable ([1, 1], [1] or []).
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
  [[noreturn]] static void throw_invalid();

  Tape* tape_ = nullptr;
  std::uint32_t index_ = 0;
  std::uint32_t generation_ = 0;  // which recording this handle belongs to (see reset)
};

/// Called by backward for each parameter leaf as the sweep passes it (see
/// Tape::set_parameter_hook). Every op that reads a leaf comes after it on the tape, so when
/// the sweep reaches the leaf, that leaf's whole contribution is in `p.grad`.
using ParameterSweptFn = void (*)(void* context, Parameter& p);

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
  Node& record(const char* op, std::initializer_list<Var> inputs, const Shape& out_shape,
               BackwardFn backward) {
    return record(op, std::span<const Var>(inputs.begin(), inputs.size()), out_shape, backward);
  }
  /// Same, with up to kMaxInputs inputs given as a span.
  Node& record(const char* op, std::span<const Var> inputs, const Shape& out_shape,
               BackwardFn backward);
  /// The handle of the most recently recorded node.
  Var last();

  Node& node(std::uint32_t index) { return nodes_[index]; }
  const Node& node(std::uint32_t index) const { return nodes_[index]; }
  Node& node(Var v) { return nodes_[v.index()]; }
  const Node& node(Var v) const { return nodes_[v.index()]; }

  // ---- differentiation ----
  /// Seeds d root / d root = 1 (root must have one element) and sweeps the record backward.
  void backward(Var root);
  /// Same, with an explicit seed of root's shape: computes the vector-Jacobian product.
  void backward(Var root, const Array& seed);

  /// From now on backward calls fn(context, p) for every parameter leaf it passes, in sweep
  /// order (the last recorded first); nullptr stops it. A parameter recorded once is then
  /// final: what overlaps a data-parallel gradient allreduce with the sweep
  /// (distributed::GradientAllreduce). Leaves recorded after the root are not passed.
  void set_parameter_hook(ParameterSweptFn fn, void* context) {
    parameter_hook_ = fn;
    hook_context_ = context;
  }
  bool has_parameter_hook() const { return parameter_hook_ != nullptr; }

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
  void begin_pass();
  void sweep_backward(std::uint32_t root);

  NodeBlocks nodes_;
  std::uint32_t size_ = 0;
  std::uint32_t generation_ = 1;
  std::uint32_t backward_pass_ = 0;  // the latest backward's number, from 1 (see Node::grad_pass; 0: none)
  bool grad_enabled_ = true;
  ParameterSweptFn parameter_hook_ = nullptr;
  void* hook_context_ = nullptr;
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

namespace detail {
void resize_to(Array& a, const Shape& s);  // out of line: rarely needed, and much code
}

/// Resizes `a` to `s` without reallocating when the element count is unchanged; the values
/// are whatever the buffer held.
inline void shape_as(Array& a, const Shape& s) {
  if (shape_of(a) != s) [[unlikely]]
    detail::resize_to(a, s);
}

/// shape_as, then fills `a` with zeros. (Inline: the backward sweep calls it for every node
/// it reaches.)
inline void zero_as(Array& a, const Shape& s) {
  shape_as(a, s);
  std::fill_n(a.data(), a.size(), 0.0F);
}

// ---- Var's accessors, inline: every op calls them several times ----

inline bool Var::valid() const {
  return tape_ != nullptr && generation_ == tape_->generation_ && index_ < tape_->size_;
}

inline const Node& Var::node() const {
  if (!valid()) [[unlikely]]
    throw_invalid();
  return tape_->nodes_[index_];
}

inline const Array& Var::value() const { return node().value(); }

inline bool Var::requires_grad() const { return node().requires_grad; }

inline Tape& Var::tape() const {
  node();  // validates
  return *tape_;
}

}  // namespace ag
