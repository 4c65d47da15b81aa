// Sequential: modules applied one after the other, as torch.nn.Sequential. Children are
// named "0", "1", ... so a state dict reads "0.weight", "2.bias" like PyTorch's.
//
//   nn::Sequential mlp(nn::Linear(784, 400, rng), nn::ReLU(), nn::Linear(400, 10, rng));
//
//   nn::Sequential decoder;                      // or grown step by step
//   decoder.add<nn::Linear>(20, 400, rng);
//   decoder.add<nn::ReLU>();
//   ag::Var logits = decoder(z);                 // z [B, 20] -> [B, 400]
#pragma once

#include <concepts>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>

#include "nn/module.hpp"

namespace nn {

class Sequential : public Module {
 public:
  Sequential() = default;
  /// Takes the given modules (moved in) as children "0", "1", ...
  template <std::derived_from<Module>... Ms>
    requires(sizeof...(Ms) > 0)
  explicit Sequential(Ms... modules) {
    (add(std::make_unique<Ms>(std::move(modules))), ...);
  }

  /// Constructs the next child from `args` and returns it.
  template <class M, class... Args>
  M& add(Args&&... args) {
    return add(std::make_unique<M>(std::forward<Args>(args)...));
  }
  /// Appends an existing module.
  template <class M>
  M& add(std::unique_ptr<M> module) {
    return register_module(std::to_string(size()), std::move(module));
  }

  /// Each child's forward, in order; a child and the next run as one op where the child can
  /// fuse them (Module::forward_fused).
  ag::Var forward(ag::Var x) override;
  std::string describe() const override { return "Sequential"; }

  std::size_t size() const { return children().size(); }
  Module& operator[](std::size_t i);
  const Module& operator[](std::size_t i) const;
};

}  // namespace nn
