// Examples from a NumPy .npy file (xtensor's xnpy.hpp parses the header): uint8 stays bytes
// (pixels 0..255), every other number type (bool, int8..int64, uint16..uint64, float16/32/64,
// either byte order) becomes float; C or Fortran order; any rank, the first axis counts
// examples and the rest is each example's shape. Labels, optional, come from a second .npy
// file of integers (or floats holding whole numbers) beside it, named <stem>-labels.npy.
//
// The header is checked before anything is allocated: the magic, the version, the header
// length, the dtype, and that the data is exactly as long as the shape says.
//
//   datasets::Dataset d = datasets::read_npy_dataset("faces.npy");   // + faces-labels.npy
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "datasets/dataset.hpp"

namespace datasets {

/// The checked header of an .npy file held in `bytes`.
struct NpyHeader {
  std::string dtype;                // "|u1", "<f4", "<f8", "<i8", ...
  std::vector<std::size_t> shape;
  bool fortran_order = false;       // column-major values
  std::size_t data_offset = 0;      // where the values start in the file
};

/// Throws DataError naming `source` unless `bytes` is a well-formed .npy file of numbers whose
/// data is exactly as long as its shape and dtype say.
NpyHeader parse_npy_header(std::string_view bytes, const std::string& source);

/// Examples from the bytes of an .npy file (a fuzzing entry point). Throws DataError.
Dataset parse_npy_dataset(std::string_view bytes, const std::string& source);

/// Integer labels from the bytes of an .npy file of rank 1. Throws DataError.
std::vector<std::int32_t> parse_npy_labels(std::string_view bytes, const std::string& source);

/// `d` with `labels` (as many as its examples; else DataError naming `labels_source`).
Dataset with_labels(Dataset d, std::vector<std::int32_t> labels, const std::string& labels_source);

/// Reads `path` and, when it exists, `<stem>-labels.npy` beside it.
Dataset read_npy_dataset(const std::filesystem::path& path);

/// The file's whole content; throws DataError if it cannot be read.
std::string read_file_bytes(const std::filesystem::path& path);

}  // namespace datasets
