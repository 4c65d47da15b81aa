#include "datasets/source.hpp"

#include <sstream>
#include <system_error>

#include <fmt/format.h>

#include "datasets/csv.hpp"
#include "datasets/error.hpp"
#include "datasets/image_folder.hpp"
#include "datasets/npy.hpp"
#include "datasets/npz.hpp"

namespace fs = std::filesystem;

namespace datasets {
namespace {

bool is_idx_folder(const fs::path& path) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(path, ec))
    if (entry.path().filename().string().find("-images-idx") != std::string::npos) return true;
  return false;
}

bool has_split_folders(const fs::path& path) {
  std::error_code ec;
  return fs::is_directory(path / "train", ec) || fs::is_directory(path / "test", ec);
}

std::string extension(const fs::path& path) {
  std::string ext = path.extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

// IDX folders name the test split "t10k".
std::string idx_split(const std::string& split) { return split == "test" ? "t10k" : split; }

}  // namespace

bool has_split(const fs::path& path, const std::string& split) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return extension(path) == ".npz" ? npz_has_split(path, split) : split == "train";
  if (is_idx_folder(path)) {
    for (const auto& entry : fs::directory_iterator(path, ec))
      if (entry.path().filename().string().rfind(idx_split(split) + "-images-idx", 0) == 0) return true;
    return false;
  }
  if (has_split_folders(path)) return fs::is_directory(path / split, ec);
  return split == "train";
}

Dataset load_source(const fs::path& path, const std::string& split, const SourceOptions& options) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw DataError(fmt::format("{}: no such file or folder", path.string()));
  if (!has_split(path, split))
    throw DataError(fmt::format("{}: the data has no {} split", path.string(), split));
  Dataset d;
  if (fs::is_directory(path, ec)) {
    if (is_idx_folder(path)) d = load_idx_dataset(path, idx_split(split), options.limit);
    else if (!has_split_folders(path)) d = read_image_folder(path, options.channels);
    // The test split's classes numbered as the training split's: numbered by its own subfolders,
    // a test split lacking a class gave each class after it the label of the one before.
    else if (split != "train" && fs::is_directory(path / "train", ec))
      d = read_image_folder(path / split, options.channels, image_folder_classes(path / "train"));
    else d = read_image_folder(path / split, options.channels);
  } else if (extension(path) == ".npy") {
    d = read_npy_dataset(path);
  } else if (extension(path) == ".npz") {
    d = read_npz_dataset(path, split);
  } else if (extension(path) == ".csv") {
    d = read_csv_dataset(path, options.label_column);
  } else {
    IdxArray examples = read_idx(path);
    d = Dataset::from_idx(std::move(examples), std::nullopt, path.string());
  }
  d.truncate(options.limit);
  d.interleave_channels();  // PyTorch's [N, C, H, W] arrays (.npy, IDX) held as images
  const fs::path names = (fs::is_directory(path, ec) ? path : path.parent_path()) / "labels.txt";
  if (fs::is_regular_file(names, ec)) d.set_label_names(read_label_names(names));
  return d;
}

std::vector<std::string> read_label_names(const fs::path& path) {
  // Through read_file_bytes: a folder or a device (/dev/zero: one endless line) is refused.
  std::istringstream in(read_file_bytes(path));
  std::vector<std::string> names;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();  // written on Windows
    if (!line.empty()) names.push_back(line);
  }
  return names;
}

}  // namespace datasets
