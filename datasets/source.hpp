// One entry point for every kind of data `--data` accepts, chosen by what the path is:
//   - a folder of IDX files (train-images-idx3-ubyte[.gz], t10k-...): splits "train", "test"
//   - a single IDX file (.idx, -ubyte, .gz): one split, "train"
//   - a .npy file (uint8 or float32/float64, any rank; first axis = examples): "train"
//   - a .csv file of numeric rows (header optional; a label column if asked): "train"
//   - a folder of PNG/JPEG images of one size: "train"; or with train/ and test/ subfolders,
//     both splits; images in class subfolders are labelled by the folder (sorted names)
// Images may come channels last ([N, H, W, C], as image folders hold them) or channels first
// ([N, C, H, W] with C = 1 or 3, PyTorch's layout); the latter are reordered to the former
// (Dataset::interleave_channels), and Dataset::channels_first() says so.
// Labels are optional everywhere. A file `labels.txt` beside the data (one class name per
// line) names the classes.
//
//   datasets::SourceOptions options{.channels = 1};
//   datasets::Dataset test = datasets::load_source("faces/", "test", options);
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "datasets/dataset.hpp"

namespace datasets {

struct SourceOptions {
  std::size_t limit = kAllExamples;  // keep the first `limit` examples
  std::size_t label_column = 0;      // CSV: 1-based column of labels; 0: no labels
  std::size_t channels = 1;          // images: 1 gray, 3 RGB
};

/// Whether the data at `path` has a split of this name ("train" or "test").
bool has_split(const std::filesystem::path& path, const std::string& split);

/// Loads one split; throws DataError naming the path and what was expected.
Dataset load_source(const std::filesystem::path& path, const std::string& split, const SourceOptions& options);

/// Class names, one per line, from a text file; throws DataError if it cannot be read.
std::vector<std::string> read_label_names(const std::filesystem::path& path);

}  // namespace datasets
