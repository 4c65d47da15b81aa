// The MLP both VAEs are made of: Linear + ReLU for each width, registered on `parent`.
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <vector>

#include "nn/activation.hpp"
#include "nn/linear.hpp"
#include "nn/sequential.hpp"

namespace models {

/// in -> widths[0] -> ... -> widths.back(), ReLU after each; no layer if widths is empty.
inline nn::Sequential& make_mlp(nn::Module& parent, const char* name, std::size_t in,
                                const std::vector<std::size_t>& widths, ag::Rng& rng) {
  auto mlp = std::make_unique<nn::Sequential>();
  for (std::size_t w : widths) {
    mlp->add<nn::Linear>(in, w, rng);
    mlp->add<nn::ReLU>();
    in = w;
  }
  return parent.register_module(name, std::move(mlp));
}

/// The width an MLP ends with: its last layer's, or its input's when it has none.
inline std::size_t last_width(const std::vector<std::size_t>& widths, std::size_t otherwise) {
  return widths.empty() ? otherwise : widths.back();
}

/// The widths in reverse order: the decoder mirrors the encoder.
inline std::vector<std::size_t> reversed(std::vector<std::size_t> v) {
  std::reverse(v.begin(), v.end());
  return v;
}

}  // namespace models
