// Shared by the programs that exchange tensors with the PyTorch checks (ops_vs_torch,
// modules_vs_torch, graph_vs_torch).
#pragma once

#include <span>
#include <string>

#include "autograd/array.hpp"
#include "nn/safetensors.hpp"

/// Tensor `name` of `file` in exactly its stored shape (TensorView::to_array would make a rank-1
/// tensor the row [1, n], as layers want; these checks compare shapes with PyTorch's).
inline ag::Array read_tensor(const nn::SafetensorsFile& file, const std::string& name) {
  const nn::TensorView v = file.get(name);
  ag::Array a(ag::Shape(v.shape.begin(), v.shape.end()));
  v.copy_to(std::span<float>(a.data(), a.size()));
  return a;
}
