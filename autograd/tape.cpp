#include "autograd/tape.hpp"

#include <algorithm>
#include <ostream>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "autograd/kernels/parallel.hpp"

namespace ag {

std::string to_string(const Shape& s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

void detail::resize_to(Array& a, const Shape& s) { a.resize(s); }

// ---- Var ----

void Var::throw_invalid() {
  throw std::logic_error(
      "ag::Var: this handle is empty or was taken before tape.reset(); its value is gone");
}

bool Var::has_grad() const { return tape_->has_latest_grad(node()); }

const Array& Var::grad() const {
  const Node& n = node();
  if (!n.requires_grad)
    throw std::logic_error(fmt::format("ag::Var::grad: node {} ({}) does not require a gradient",
                                       index_, n.op));
  if (!has_grad())
    throw std::logic_error(fmt::format(
        "ag::Var::grad: no gradient reached node {} ({}) in the latest backward: the root does "
        "not depend on it, or backward has not run since it was recorded",
        index_, n.op));
  return n.grad();
}

float Var::item() const {
  const Array& v = value();
  if (v.size() != 1)
    throw ShapeError(fmt::format("item: expected a one-element value, got {}", to_string(shape_of(v))));
  return v.data()[0];
}

// ---- recording ----

Node& Tape::next_node() {
  Node& n = size_ == nodes_.size() ? nodes_.grow() : nodes_[size_];
  ++size_;
  n.arity = 0;
  n.writes_fresh = false;
  n.grad_pass = 0;  // not reached by any pass yet (the slot may hold an earlier recording's)
  n.backward = nullptr;
  n.parameter = nullptr;
  return n;
}

Var Tape::last() { return Var(this, size_ - 1, generation_); }

Var Tape::variable(const Array& value, bool requires_grad) {
  Node& n = next_node();
  n.op = requires_grad ? "variable" : "constant";
  n.requires_grad = requires_grad && grad_enabled_;
  if (shape_of(n.own_value) != shape_of(value)) n.own_value.resize(value.shape());
  // A training batch ([128, 784]) is copied by both cores, each the half its loader thread wrote.
  const float* from = value.data();
  float* to = n.own_value.data();
  parallel_for(value.size(), 32768, [from, to](std::size_t begin, std::size_t end) {
    std::copy(from + begin, from + end, to + begin);
  });
  return last();
}

Var Tape::parameter(Parameter& p) {
  Node& n = next_node();
  n.op = "parameter";
  n.parameter = &p;
  n.requires_grad = grad_enabled_;
  if (shape_of(p.grad) != shape_of(p.value)) zero_as(p.grad, shape_of(p.value));
  return last();
}

// Whether a shape has at most 2^40 elements (4 TB of floats), counted without overflowing: a
// count past 2^64 (an upsampling by 2^31 each way) would wrap around to a small one, and the
// op would write its result past the array allocated for it.
static bool fits_in_memory(const Shape& shape) {
  constexpr std::size_t kMaxElements = std::size_t{1} << 40;
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return true;
  std::size_t n = 1;
  for (std::size_t d : shape) {
    if (d > kMaxElements / n) return false;
    n *= d;
  }
  return true;
}

Node& Tape::record(const char* op, std::span<const Var> inputs, const Shape& out_shape,
                   BackwardFn backward) {
  if (inputs.size() > kMaxInputs)
    throw std::logic_error(fmt::format("{}: {} inputs, a node takes at most {}", op, inputs.size(), kMaxInputs));
  if (out_shape.size() > kMaxRank)
    throw ShapeError(fmt::format("{}: the result {} has more than {} dimensions", op, to_string(out_shape), kMaxRank));
  if (!fits_in_memory(out_shape))
    throw ShapeError(fmt::format("{}: the result {} has more than 2^40 elements, more than any memory holds", op,
                                 to_string(out_shape)));
  bool any_requires_grad = false;
  std::array<std::uint32_t, kMaxInputs> indices{};
  std::uint8_t arity = 0;
  for (const Var& v : inputs) {
    if (!v.valid() || v.tape_ != this)
      throw std::logic_error(fmt::format(
          "{}: an input is empty, from another tape, or from before tape.reset()", op));
    any_requires_grad = any_requires_grad || nodes_[v.index_].requires_grad;
    indices[arity++] = v.index_;
  }
  Node& n = next_node();
  n.op = op;
  n.inputs = indices;
  n.arity = arity;
  n.requires_grad = grad_enabled_ && any_requires_grad;
  n.backward = n.requires_grad ? backward : nullptr;
  if (shape_of(n.own_value) != out_shape) n.own_value.resize(out_shape);
  return n;
}

bool Tape::has_latest_grad(const Node& n) const {
  return n.requires_grad && (n.parameter != nullptr || (n.grad_pass != 0 && n.grad_pass == backward_pass_));
}

void Tape::reset() {
  size_ = 0;
  ++generation_;
}

// ---- differentiation ----

void Tape::backward(Var root) {
  if (!root.valid() || root.tape_ != this)
    throw std::logic_error("backward: the root is not a live variable of this tape");
  if (root.value().size() != 1)
    throw ShapeError(fmt::format(
        "backward: the root must be a one-element scalar, got {}; pass a seed of its shape instead",
        to_string(root.shape())));
  Node& r = nodes_[root.index_];
  if (!r.requires_grad)
    throw std::logic_error(fmt::format(
        "backward: node {} ({}) does not depend on anything that requires a gradient",
        root.index_, r.op));
  begin_pass();
  if (r.parameter == nullptr) zero_as(r.own_grad, shape_of(r.value()));
  r.grad_pass = backward_pass_;
  if (r.parameter != nullptr) r.parameter->settle_grad();
  r.grad().data()[0] += 1.0F;
  sweep_backward(root.index_);
}

void Tape::backward(Var root, const Array& seed) {
  if (!root.valid() || root.tape_ != this)
    throw std::logic_error("backward: the root is not a live variable of this tape");
  Node& r = nodes_[root.index_];
  if (!r.requires_grad)
    throw std::logic_error(fmt::format(
        "backward: node {} ({}) does not depend on anything that requires a gradient",
        root.index_, r.op));
  if (shape_of(seed) != shape_of(r.value()))
    throw ShapeError(fmt::format("backward: seed shape {} differs from the root's {}",
                                 to_string(shape_of(seed)), to_string(shape_of(r.value()))));
  begin_pass();
  if (r.parameter == nullptr) zero_as(r.own_grad, shape_of(seed));
  r.grad_pass = backward_pass_;
  if (r.parameter != nullptr) r.parameter->settle_grad();
  float* g = r.grad().data();
  for (std::size_t i = 0; i < seed.size(); ++i) g[i] += seed.data()[i];
  sweep_backward(root.index_);
}

// A new pass number. 0 means "never reached" on a node (a new or reused slot), so numbers run
// from 1; after 2^32 - 1 passes they start over, every node's number cleared first, so no node
// can carry a number the new pass will use (it would count as reached, its gradient not zeroed).
void Tape::begin_pass() {
  if (++backward_pass_ != 0) return;
  for (std::uint32_t i = 0; i < size_; ++i) nodes_[i].grad_pass = 0;
  backward_pass_ = 1;
}

// One pass from the root down to the first node. A node's gradient buffer is zeroed
// the first time something is about to flow into it, so nodes the root does not depend
// on cost nothing. Parameter leaves are never zeroed here: they accumulate. The parameter
// hook, if set, hears of each parameter leaf as the sweep passes it. A node counts as reached
// when its grad_pass is this pass's number, so no flag needs clearing before the sweep (a pass
// over every node, which was a tenth of a 1-element op's cost).
//
// Fresh gradients: an op whose node has writes_fresh set (the VAE's large ones: linear, relu,
// bce_with_logits) is handed the inputs it reaches first unzeroed, each marked in
// fresh_inputs, and its rule writes those gradients as 0 + its contribution instead of adding
// to them: the same values, without a pass of zeros and a pass reading them back. A parameter
// is handed over fresh too while its zero_grad is deferred (Parameter::defer_zero_grad): the
// training loop's zero_grad then costs nothing, and the weights' gradients are written once
// instead of zeroed, read and written; a parameter that another op reaches first, or that no
// gradient reaches, is settled (its zeros filled) as the sweep passes it. An input
// that occurs twice among a node's inputs is marked at its first occurrence only, so a rule
// must handle its inputs in order, input 0 first.
// The inputs of a writes_fresh node that this pass reaches first: shaped, not zeroed, and
// marked in the node's fresh_inputs. Out of line: inside the sweep's loop it made a 1-element
// op's record + backward about 7 ns slower (bench_vae's per-op overhead 44 -> 51 ns; 45 now).
[[gnu::noinline]] static void mark_fresh_inputs(NodeBlocks& nodes, Node& n, std::uint32_t pass) {
  std::uint8_t fresh = 0;
  for (std::uint8_t k = 0; k < n.arity; ++k) {
    Node& in = nodes[n.inputs[k]];
    if (!in.requires_grad || in.grad_pass == pass) continue;
    in.grad_pass = pass;
    if (in.parameter != nullptr) {  // fresh only while its zero_grad is deferred (this rule writes it)
      if (!in.parameter->grad_zero_pending) continue;
      in.parameter->grad_zero_pending = false;
    } else {
      shape_as(in.own_grad, shape_of(in.own_value));
    }
    fresh = static_cast<std::uint8_t>(fresh | (1U << k));
  }
  n.fresh_inputs = fresh;
}

void Tape::sweep_backward(std::uint32_t root) {
  const std::uint32_t pass = backward_pass_;
  for (std::uint32_t i = root + 1; i-- > 0;) {
    Node& n = nodes_[i];
    if (n.parameter != nullptr) [[unlikely]] {  // its gradient is final here (zero if nothing flowed into it)
      n.parameter->settle_grad();
      if (parameter_hook_ != nullptr) parameter_hook_(hook_context_, *n.parameter);
    }
    if (n.grad_pass != pass || n.backward == nullptr) continue;
    if (n.writes_fresh) [[unlikely]] {
      mark_fresh_inputs(nodes_, n, pass);
    } else {
      for (std::uint8_t k = 0; k < n.arity; ++k) {
        Node& in = nodes_[n.inputs[k]];
        if (!in.requires_grad || in.grad_pass == pass) continue;
        in.grad_pass = pass;
        if (in.parameter == nullptr) zero_as(in.own_grad, shape_of(in.own_value));
        else in.parameter->settle_grad();
      }
    }
    n.backward(*this, n);
  }
}

// ---- introspection ----

std::size_t Tape::bytes_reserved() const {
  std::size_t floats = 0;
  for (std::uint32_t i = 0; i < nodes_.size(); ++i) {
    const Node& n = nodes_[i];
    floats += n.own_value.size() + n.own_grad.size() + n.saved.size() + n.scratch.size();
  }
  return floats * sizeof(float) + nodes_.allocated() * sizeof(Node);
}

std::string to_string(const Array& a, std::size_t max_elements) {
  const std::size_t rows = a.shape()[0], cols = a.shape()[1];
  if (a.size() > max_elements) {
    std::string text = "{";
    for (std::size_t i = 0; i < max_elements; ++i) text += fmt::format("{:g}, ", a.data()[i]);
    return text + fmt::format("...}} ({} values)", a.size());
  }
  std::string text = "{";
  for (std::size_t r = 0; r < rows; ++r) {
    text += r ? ", {" : "{";
    for (std::size_t c = 0; c < cols; ++c) text += fmt::format("{}{:g}", c ? ", " : "", a(r, c));
    text += "}";
  }
  return text + "}";
}

// The value and gradient that `options` asks for, each after `separator`.
std::string Tape::describe_data(const Node& n, const PrintOptions& options,
                                const char* separator) const {
  std::string text;
  if (options.values)
    text += fmt::format("{}value {}", separator, to_string(n.value(), options.max_elements));
  if (options.grads && has_latest_grad(n))
    text += fmt::format("{}grad {}", separator, to_string(n.grad(), options.max_elements));
  return text;
}

void Tape::print(std::ostream& out, const PrintOptions& options) const {
  for (std::uint32_t i = 0; i < size_; ++i) {
    const Node& n = nodes_[i];
    std::string args;
    for (std::uint8_t k = 0; k < n.arity; ++k)
      args += fmt::format("{}%{}", k ? ", " : "", n.inputs[k]);
    const std::string line =
        fmt::format("%{:<5} {:<24} {:<12}{:<5}{}", i, fmt::format("{}({})", n.op, args),
                    to_string(shape_of(n.value())), n.requires_grad ? " grad" : "",
                    describe_data(n, options, "  "));
    out << line.substr(0, line.find_last_not_of(' ') + 1) << '\n';
  }
}

std::string Tape::to_dot(const PrintOptions& options) const {
  std::ostringstream out;
  out << "digraph tape {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n";
  for (std::uint32_t i = 0; i < size_; ++i) {
    const Node& n = nodes_[i];
    out << fmt::format("  n{} [label=\"%{} {}\\n{}{}\"{}];\n", i, i, n.op,
                       to_string(shape_of(n.value())), describe_data(n, options, "\\n"),
                       n.arity == 0 ? ", style=rounded" : "");
    for (std::uint8_t k = 0; k < n.arity; ++k) out << fmt::format("  n{} -> n{};\n", n.inputs[k], i);
  }
  out << "}\n";
  return out.str();
}

}  // namespace ag
