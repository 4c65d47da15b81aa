#include "nn/module.hpp"

#include <algorithm>
#include <ostream>
#include <stdexcept>

#include <fmt/format.h>

namespace nn {

std::string to_string(const TensorShape& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

std::size_t element_count(const TensorShape& shape) {
  std::size_t n = 1;
  for (std::size_t d : shape) n *= d;
  return n;
}

// ---- forward and printing ----

ag::Var Module::forward(ag::Var) {
  throw std::logic_error(fmt::format(
      "{} has no forward(Var): it is not a single-input layer; call its own methods", describe()));
}

std::string Module::to_string() const {
  std::string out;
  print_tree(out, "");
  return out;
}

// Leaves print on one line; a module with children opens a bracket, lists each child as
// "(name): ..." indented by two, and closes it, the way PyTorch prints a model.
void Module::print_tree(std::string& out, const std::string& indent) const {
  out += describe();
  if (children_.empty()) return;
  out += "(\n";
  for (const Child& child : children_) {
    out += fmt::format("{}  ({}): ", indent, child.name);
    child.module->print_tree(out, indent + "  ");
    out += "\n";
  }
  out += indent + ")";
}

std::ostream& operator<<(std::ostream& out, const Module& module) {
  return out << module.to_string();
}

// ---- registration ----

void Module::check_new_name(const std::string& name) const {
  if (name.empty() || name.find('.') != std::string::npos)
    throw std::invalid_argument(
        fmt::format("Module: invalid name '{}' (must be non-empty and contain no '.')", name));
  auto taken = [&](const auto& list) {
    return std::any_of(list.begin(), list.end(), [&](const auto& e) { return e.name == name; });
  };
  if (taken(parameters_) || taken(buffers_) || taken(children_))
    throw std::invalid_argument(
        fmt::format("Module {}: the name '{}' is already registered", describe(), name));
}

TensorShape Module::checked_shape(const std::string& name, const ag::Array& value,
                                  TensorShape logical_shape) const {
  if (logical_shape.empty()) return {value.shape().begin(), value.shape().end()};
  if (element_count(logical_shape) != value.size())
    throw std::invalid_argument(
        fmt::format("Module {}: '{}' is stored as {} ({} elements) but its logical shape {} has {}",
                    describe(), name, ag::to_string(ag::shape_of(value)), value.size(),
                    nn::to_string(logical_shape), element_count(logical_shape)));
  return logical_shape;
}

ag::Parameter& Module::register_parameter(std::string name, ag::Array value,
                                          TensorShape logical_shape) {
  check_new_name(name);
  TensorShape shape = checked_shape(name, value, std::move(logical_shape));
  auto parameter = std::make_unique<ag::Parameter>(std::move(value));
  ag::Parameter& ref = *parameter;
  parameters_.push_back({{std::move(name), std::move(shape)}, std::move(parameter)});
  return ref;
}

ag::Array& Module::register_buffer(std::string name, ag::Array value, TensorShape logical_shape) {
  check_new_name(name);
  TensorShape shape = checked_shape(name, value, std::move(logical_shape));
  auto array = std::make_unique<ag::Array>(std::move(value));
  ag::Array& ref = *array;
  buffers_.push_back({{std::move(name), std::move(shape)}, std::move(array)});
  return ref;
}

void Module::adopt(std::string name, std::unique_ptr<Module> module) {
  if (!module) throw std::invalid_argument("Module::register_module: null module");
  check_new_name(name);
  module->train(training_);  // a child joins in its parent's mode
  children_.push_back({std::move(name), std::move(module)});
}

// ---- parameters ----

void Module::collect_parameters(const std::string& prefix, std::vector<NamedParameter>& out) {
  for (ParameterSlot& slot : parameters_) out.push_back({prefix + slot.name, slot.parameter.get()});
  for (Child& child : children_) child.module->collect_parameters(prefix + child.name + ".", out);
}

std::vector<NamedParameter> Module::named_parameters() {
  std::vector<NamedParameter> out;
  collect_parameters("", out);
  return out;
}

std::vector<ag::Parameter*> Module::parameters() {
  std::vector<ag::Parameter*> out;
  for (NamedParameter& named : named_parameters()) out.push_back(named.parameter);
  return out;
}

std::size_t Module::num_parameters() const {
  std::size_t n = 0;
  for (const ParameterSlot& slot : parameters_) n += slot.parameter->numel();
  for (const Child& child : children_) n += child.module->num_parameters();
  return n;
}

// Recursive rather than through parameters(): called every step, it should not allocate.
void Module::zero_grad() {
  for (ParameterSlot& slot : parameters_) slot.parameter->zero_grad();
  for (Child& child : children_) child.module->zero_grad();
}

std::vector<std::pair<std::string, Module*>> Module::named_children() {
  std::vector<std::pair<std::string, Module*>> out;
  for (Child& child : children_) out.emplace_back(child.name, child.module.get());
  return out;
}

void Module::train(bool on) {
  training_ = on;
  for (Child& child : children_) child.module->train(on);
}

// ---- state dict ----

void Module::collect_state(const std::string& prefix, std::vector<StateEntry>& out) {
  for (ParameterSlot& slot : parameters_)
    out.push_back({prefix + slot.name, slot.shape, &slot.parameter->value});
  for (BufferSlot& slot : buffers_)
    out.push_back({prefix + slot.name, slot.shape, slot.array.get()});
  for (Child& child : children_) child.module->collect_state(prefix + child.name + ".", out);
}

std::vector<StateEntry> Module::state_dict() {
  std::vector<StateEntry> out;
  collect_state("", out);
  return out;
}

TensorMap Module::state_dict_copy() {
  TensorMap out;
  for (const StateEntry& entry : state_dict())
    out[entry.name] = Tensor{entry.shape, {entry.array->begin(), entry.array->end()}};
  return out;
}

void Module::load_state_dict(const TensorMap& source, bool strict) {
  const std::vector<StateEntry> entries = state_dict();
  // Check everything first, so that a bad source cannot leave the module half loaded.
  for (const StateEntry& entry : entries) {
    auto found = source.find(entry.name);
    if (found == source.end())
      throw StateDictError(entry.name,
                           fmt::format("load_state_dict: tensor '{}' (shape {}) is missing from "
                                       "the source",
                                       entry.name, nn::to_string(entry.shape)));
    const Tensor& tensor = found->second;
    if (tensor.shape != entry.shape)
      throw StateDictError(
          entry.name,
          fmt::format("load_state_dict: tensor '{}' has shape {} in the module "
                      "but {} in the source",
                      entry.name, nn::to_string(entry.shape), nn::to_string(tensor.shape)));
    if (tensor.values.size() != entry.array->size())
      throw StateDictError(entry.name,
                           fmt::format("load_state_dict: tensor '{}' of shape {} needs {} values; "
                                       "the source holds {}",
                                       entry.name, nn::to_string(entry.shape), entry.array->size(),
                                       tensor.values.size()));
  }
  if (strict && source.size() != entries.size()) {
    // Not a structured binding: clang 14 cannot capture one in the lambda below.
    for (const auto& item : source) {
      const std::string& name = item.first;
      const Tensor& tensor = item.second;
      const bool known = std::any_of(entries.begin(), entries.end(),
                                     [&](const StateEntry& e) { return e.name == name; });
      if (!known)
        throw StateDictError(name, fmt::format("load_state_dict: the source has tensor '{}' "
                                               "(shape {}), which the module does not",
                                               name, nn::to_string(tensor.shape)));
    }
  }
  for (const StateEntry& entry : entries) {
    const std::vector<float>& values = source.find(entry.name)->second.values;
    std::copy(values.begin(), values.end(), entry.array->begin());
  }
}

}  // namespace nn
