// Examples from a NumPy .npz archive (np.savez or np.savez_compressed; a zip read by libzip),
// each array an .npy member parsed as `.npy` files are (npy.hpp). Which arrays are which, by
// their names in the archive:
//   - Keras's layout (mnist.npz, fashion_mnist.npz, ...): x_train and y_train are the train
//     split, x_test and y_test the test split;
//   - otherwise one train split: the examples are `x` (or `images`, `data`, or np.savez's
//     first unnamed array, arr_0) and the labels, optional, `y` (or `labels`, or arr_1).
// Before a member is inflated, its size is checked against what its compressed bytes can
// inflate to (deflate's 1032:1), so a small hostile archive cannot make the reader allocate
// gigabytes; a member whose bytes do not match its CRC is refused.
//
//   datasets::Dataset train = datasets::read_npz_dataset("mnist.npz", "train");
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "datasets/dataset.hpp"

namespace datasets {

/// Whether the archive at `path` holds `split` ("train" or "test"). Throws DataError if it
/// cannot be read as a zip archive.
bool npz_has_split(const std::filesystem::path& path, const std::string& split);

/// `split` of the archive at `path`. Throws DataError naming the file and member.
Dataset read_npz_dataset(const std::filesystem::path& path, const std::string& split);

/// `split` of the archive held in `bytes` (a fuzzing entry point). Throws DataError.
Dataset parse_npz_dataset(std::string_view bytes, const std::string& split, const std::string& source);

}  // namespace datasets
