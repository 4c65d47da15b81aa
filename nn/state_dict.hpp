// The vocabulary of a state dict: what a module saves and what it loads back.
//
// Every array in this framework is a 2-D [rows, cols] matrix, but a checkpoint should look
// like PyTorch's: nn.Linear's bias is stored here as a row [1, out] and written as [out].
// So each entry carries its *logical* shape (any rank, as PyTorch reports it) next to the
// array that holds its values in the same row-major order.
#pragma once

#include <cstddef>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "autograd/array.hpp"

namespace nn {

/// A logical tensor shape of any rank, as PyTorch reports it: [400, 784], [400], [].
using TensorShape = std::vector<std::size_t>;

/// One tensor of a module's state, by reference: `array` is the module's own storage.
struct StateEntry {
  std::string name;   // dotted, e.g. "encoder.fc1.weight"
  TensorShape shape;  // logical shape; its element count equals array->size()
  ag::Array* array;   // row-major values, stored 2-D
};

/// A tensor by value: what a checkpoint reader produces and load_state_dict consumes.
struct Tensor {
  TensorShape shape;
  std::vector<float> values;  // row-major, product(shape) of them
};

/// Tensors by name, e.g. everything read from one safetensors file.
using TensorMap = std::map<std::string, Tensor>;

/// Thrown by load_state_dict when the source does not fit the module: a tensor is missing,
/// unexpected, or has another shape. The message names the tensor and both shapes; the
/// module is left unchanged.
class StateDictError : public std::runtime_error {
 public:
  StateDictError(std::string tensor, const std::string& message)
      : std::runtime_error(message), tensor_(std::move(tensor)) {}
  /// The name of the offending tensor.
  const std::string& tensor() const { return tensor_; }

 private:
  std::string tensor_;
};

/// "[400, 784]"; "[]" for a scalar.
std::string to_string(const TensorShape& shape);

/// The number of elements of a tensor of this shape (1 for a scalar).
std::size_t element_count(const TensorShape& shape);

}  // namespace nn
