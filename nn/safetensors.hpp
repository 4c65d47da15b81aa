// Safetensors: the checkpoint file format (the one Hugging Face and PyTorch users read).
//
// Layout: an 8-byte little-endian u64 N, then N bytes of JSON
//   {"__metadata__": {"key": "value", ...},
//    "name": {"dtype": "F32", "shape": [400, 784], "data_offsets": [begin, end]}, ...}
// padded with spaces to a multiple of 8, then the raw little-endian tensor bytes; offsets
// count from the end of the header. This layer knows nothing about modules: it moves
// named, shaped blocks of numbers and string metadata.
//
//   std::vector<nn::TensorEntry> entries = {{"fc1.weight", {400, 784}, w.data(), w.size()},
//                                           {"fc1.bias", {400}, b.data(), b.size()}};
//   nn::save_safetensors("vae.safetensors", entries, {{"latent", "20"}});
//
//   nn::SafetensorsFile file = nn::SafetensorsFile::load("vae.safetensors");
//   ag::Array w = file.get("fc1.weight", {400, 784}).to_array();   // [400, 784]
//   ag::Array b = file.get("fc1.bias", {400}).to_array();          // [1, 400]
//   file.metadata().at("latent");                                  // "20"
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "autograd/array.hpp"

namespace nn {

/// Thrown for any malformed, missing or mismatched safetensors content; the message
/// names the file and what was expected versus found.
class SafetensorsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The dtypes of the safetensors specification.
enum class DType { BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, I64, U64, F64 };

std::size_t dtype_size(DType dtype);
/// "F32" and so on, as written in the header.
std::string_view dtype_name(DType dtype);
std::optional<DType> parse_dtype(std::string_view name);

using Metadata = std::map<std::string, std::string>;

/// One tensor to write: its name, logical shape (e.g. {out} for a bias, {} for a scalar)
/// and `count` elements of `dtype` at `data`. The data is not copied: it must stay alive
/// until the write returns.
struct TensorEntry {
  std::string name;
  std::vector<std::size_t> shape;
  DType dtype = DType::F32;
  const void* data = nullptr;
  std::size_t count = 0;

  TensorEntry(std::string name, std::vector<std::size_t> shape, const float* data, std::size_t count)
      : name(std::move(name)), shape(std::move(shape)), dtype(DType::F32), data(data), count(count) {}
  TensorEntry(std::string name, std::vector<std::size_t> shape, const double* data, std::size_t count)
      : name(std::move(name)), shape(std::move(shape)), dtype(DType::F64), data(data), count(count) {}
  TensorEntry(std::string name, std::vector<std::size_t> shape, const std::int64_t* data, std::size_t count)
      : name(std::move(name)), shape(std::move(shape)), dtype(DType::I64), data(data), count(count) {}
  TensorEntry(std::string name, std::vector<std::size_t> shape, const std::int32_t* data, std::size_t count)
      : name(std::move(name)), shape(std::move(shape)), dtype(DType::I32), data(data), count(count) {}
  TensorEntry(std::string name, std::vector<std::size_t> shape, const std::uint8_t* data, std::size_t count)
      : name(std::move(name)), shape(std::move(shape)), dtype(DType::U8), data(data), count(count) {}
  /// An array written under a logical shape: {400} for a [1, 400] bias row.
  TensorEntry(std::string name, std::vector<std::size_t> shape, const ag::Array& array)
      : TensorEntry(std::move(name), std::move(shape), array.data(), array.size()) {}
};

/// The complete file contents, for in-memory use and tests. Throws SafetensorsError if an
/// entry is invalid (empty or duplicate name, count not the product of the shape, no data).
std::vector<std::byte> serialize_safetensors(std::span<const TensorEntry> entries,
                                             const Metadata& metadata = {});

/// Writes the file atomically: to `path.tmp-<pid>` in the same folder, fsync, then rename
/// over `path`. On any failure the temporary file is removed, the previous file at `path`
/// (if any) is left untouched, and SafetensorsError is thrown.
void save_safetensors(const std::filesystem::path& path, std::span<const TensorEntry> entries,
                      const Metadata& metadata = {});

/// A read-only view of one stored tensor; valid while its SafetensorsFile lives.
struct TensorView {
  std::string name;
  DType dtype;
  std::vector<std::size_t> shape;
  std::span<const std::byte> bytes;

  std::size_t count() const;
  /// The values as float (F32 exactly; other numeric dtypes converted). Throws
  /// SafetensorsError for F8 dtypes.
  std::vector<float> to_floats() const;
  /// Converts into out, which must hold exactly count() floats.
  void copy_to(std::span<float> out) const;
  /// As an ag::Array: a scalar is [1, 1], a rank-1 [n] is the row [1, n] (as the layers
  /// hold biases), any higher rank as is (up to ag::kMaxRank; beyond, SafetensorsError).
  ag::Array to_array() const;
};

/// A whole safetensors file in memory, validated on load.
class SafetensorsFile {
 public:
  /// Reads and validates `path`. Checks: at least 8 bytes; the header length fits the
  /// file; the header is a JSON object; every entry has a known dtype, a shape of
  /// non-negative integers and two data_offsets inside the data section whose length
  /// equals shape x dtype size; the tensors cover the data section exactly (no overlap,
  /// no gap, as the specification requires). Throws SafetensorsError naming the file.
  static SafetensorsFile load(const std::filesystem::path& path);
  /// The same checks on bytes already in memory; `source` names them in messages.
  static SafetensorsFile parse(std::vector<std::byte> bytes, std::string source);

  const std::string& source() const { return source_; }
  const Metadata& metadata() const { return metadata_; }
  /// Throws "missing metadata key K in FILE".
  const std::string& metadata_value(const std::string& key) const;
  /// Tensor names in the order of their data.
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const;
  /// Throws "missing tensor X in FILE".
  TensorView get(const std::string& name) const;
  /// Also checks the shape: throws "tensor X in FILE has shape [..], expected [..]".
  TensorView get(const std::string& name, const std::vector<std::size_t>& expected_shape) const;

 private:
  struct Info {
    DType dtype;
    std::vector<std::size_t> shape;
    std::size_t begin;  // absolute offsets in bytes_
    std::size_t end;
  };
  SafetensorsFile() = default;

  std::string source_;
  std::vector<std::byte> bytes_;
  Metadata metadata_;
  std::map<std::string, Info> tensors_;
};

}  // namespace nn
