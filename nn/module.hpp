// Module: the base of every layer and model, as torch.nn.Module.
//
// A module owns named parameters (trainable), named buffers (saved but not trained) and
// named submodules, in registration order. Names compose with dots, so a model's state
// reads like PyTorch's: "encoder.fc1.weight". Everything is held through unique_ptr, so
// the references handed out by register_* stay valid when the module itself is moved.
//
//   struct Mlp : nn::Module {
//     nn::Linear& fc1;
//     nn::Linear& fc2;
//     explicit Mlp(ag::Rng& rng)
//         : fc1(register_module<nn::Linear>("fc1", 2, 16, rng)),
//           fc2(register_module<nn::Linear>("fc2", 16, 1, rng)) {}
//     ag::Var forward(ag::Var x) override { return fc2(ag::relu(fc1(x))); }   // [B, 2] -> [B, 1]
//   };
//
//   Mlp model(rng);
//   model.named_parameters();   // fc1.weight [16, 2], fc1.bias [1, 16], fc2.weight, fc2.bias
//   optim::Adam opt(model.parameters());
//
// Forward passes reach the tape through their input: a layer calls `x.tape().parameter(p)`
// for each parameter it uses, so a module never holds a tape.
#pragma once

#include <cstddef>
#include <iosfwd>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/parameter.hpp"
#include "autograd/tape.hpp"
#include "nn/state_dict.hpp"

namespace nn {

struct NamedParameter {
  std::string name;
  ag::Parameter* parameter;
};

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  // Copying would duplicate parameters silently; moving hands them over intact.
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  Module(Module&&) = default;
  Module& operator=(Module&&) = default;

  /// The module applied to one input. Layers and Sequential override it; a model with
  /// another signature (several inputs or outputs) defines its own methods instead, and
  /// calling this one throws std::logic_error, as PyTorch's Module.forward raises.
  virtual ag::Var forward(ag::Var x);
  ag::Var operator()(ag::Var x) { return forward(x); }
  /// This module and `next` (the one after it in a Sequential) applied as one op, with the bits
  /// of the two, if this module can (a convolution and a ReLU); an invalid Var if not, the
  /// default. Sequential asks each child before calling forward.
  virtual ag::Var forward_fused(ag::Var /*x*/, const Module& /*next*/) { return {}; }

  /// One line naming the module and its configuration, as PyTorch prints it:
  /// "Linear(in_features=784, out_features=400, bias=true)".
  virtual std::string describe() const { return "Module"; }
  /// The module tree, one line per module, indented as PyTorch prints it.
  std::string to_string() const;

  // ---- registration (names: non-empty, no '.', unique within this module) ----

  /// Takes `value` as a new parameter. `logical_shape` is its shape in a checkpoint when
  /// that differs from the stored [rows, cols] (a bias: {out}); empty means "as stored".
  ag::Parameter& register_parameter(std::string name, ag::Array value,
                                    TensorShape logical_shape = {});
  /// A non-trainable array that belongs in the state dict (running statistics, fixed masks).
  ag::Array& register_buffer(std::string name, ag::Array value, TensorShape logical_shape = {});
  /// Constructs a submodule of type M from `args` and returns it.
  template <class M, class... Args>
  M& register_module(std::string name, Args&&... args) {
    return register_module(std::move(name), std::make_unique<M>(std::forward<Args>(args)...));
  }
  /// Adopts an existing submodule.
  template <class M>
  M& register_module(std::string name, std::unique_ptr<M> module) {
    M& ref = *module;
    adopt(std::move(name), std::move(module));
    return ref;
  }

  // ---- parameters ----

  /// Every parameter of this module and its submodules, in registration order
  /// (this module's own first, then each child's).
  std::vector<ag::Parameter*> parameters();
  std::vector<NamedParameter> named_parameters();
  /// Total number of trainable scalars.
  std::size_t num_parameters() const;
  /// Sets every parameter's gradient to zero (backward accumulates into it).
  void zero_grad();

  // ---- submodules ----

  /// Direct children, in registration order.
  std::vector<std::pair<std::string, Module*>> named_children();

  // ---- training mode ----

  /// Sets training mode on this module and all its submodules (eval() is train(false)).
  /// Layers whose behavior differs between training and evaluation read is_training().
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // ---- state dict ----

  /// Parameters and buffers with dotted names and logical shapes, by reference:
  /// each module's parameters, then its buffers, then its children's, as PyTorch orders them.
  std::vector<StateEntry> state_dict();
  /// The same, copied out: a snapshot that later changes to the module do not touch.
  TensorMap state_dict_copy();
  /// Copies every entry of the state dict from `source`. Each must be present with exactly
  /// its logical shape; with `strict`, names in `source` that the module lacks are errors
  /// too. Everything is checked before anything is written, so a failed load throws
  /// StateDictError and leaves the module unchanged.
  void load_state_dict(const TensorMap& source, bool strict = true);

 protected:
  /// Children in order; Sequential walks them in forward without allocating.
  struct Child {
    std::string name;
    std::unique_ptr<Module> module;
  };
  const std::vector<Child>& children() const { return children_; }

 private:
  struct Slot {  // a parameter's or buffer's name and logical shape
    std::string name;
    TensorShape shape;
  };
  struct ParameterSlot : Slot {
    std::unique_ptr<ag::Parameter> parameter;
  };
  struct BufferSlot : Slot {
    std::unique_ptr<ag::Array> array;
  };

  void adopt(std::string name, std::unique_ptr<Module> module);
  void check_new_name(const std::string& name) const;
  TensorShape checked_shape(const std::string& name, const ag::Array& value,
                            TensorShape logical_shape) const;
  void collect_parameters(const std::string& prefix, std::vector<NamedParameter>& out);
  void collect_state(const std::string& prefix, std::vector<StateEntry>& out);
  void print_tree(std::string& out, const std::string& indent) const;

  std::vector<ParameterSlot> parameters_;
  std::vector<BufferSlot> buffers_;
  std::vector<Child> children_;
  bool training_ = true;
};

/// The module tree, as Module::to_string.
std::ostream& operator<<(std::ostream& out, const Module& module);

}  // namespace nn
