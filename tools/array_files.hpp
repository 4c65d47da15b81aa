// Arrays in and out of a subcommand's files, by the extension of their names: the [N, D]
// values a subcommand writes (.npy, .csv, .idx, .png) and the latent vectors `decode` reads.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "autograd/array.hpp"
#include "datasets/dataset.hpp"

namespace tools {

/// How a model's examples look: `shape` as the rows hold them (images [H, W] or [H, W, C],
/// channels interleaved); channels_first: the training data came as [C, H, W] (PyTorch's
/// layout, see datasets::Dataset::interleave_channels), so arrays written go out that way.
struct ExampleLayout {
  std::vector<std::size_t> shape;
  bool channels_first = false;
};

/// Writes [N, D] values by the extension of `path`: .npy (float32 [N, ...example shape], channels
/// first if the layout says so), .csv (a header row of `columns`, or x0..xD-1), .idx/.gz (IDX
/// float32, shaped as .npy), or .png (a grid of images, `cols` to a row; needs an image shape).
/// Atomic; throws FlagError for an extension it does not know.
void write_array(const std::filesystem::path& path, const ag::Array& values, const ExampleLayout& example,
                 std::size_t cols = 8,
                 const std::vector<std::string>& columns = {});

/// Reads [N, D] float values from a .npy or .csv file (latent vectors for `decode`).
ag::Array read_matrix(const std::filesystem::path& path);

/// Examples i of `d` as float rows.
ag::Array rows_of(const datasets::Dataset& d, std::size_t begin, std::size_t end);

/// Text written atomically.
void write_text(const std::filesystem::path& path, const std::string& text);

/// The format a file name says, lower case: ".npy", ".csv", ".png", ".idx" (also for names
/// ending in -ubyte or -float), ".gz"; else the name's own extension.
std::string extension_of(const std::filesystem::path& path);

/// Requires an output extension from `allowed` (".npy", ...); throws FlagError naming `flag`.
void check_extension(const std::string& flag, const std::filesystem::path& path,
                     const std::vector<std::string>& allowed);

}  // namespace tools
