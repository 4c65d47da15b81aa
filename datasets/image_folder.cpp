#include "datasets/image_folder.hpp"

#include <algorithm>
#include <climits>
#include <cstring>
#include <memory>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "datasets/error.hpp"
#include "datasets/npy.hpp"

namespace fs = std::filesystem;

namespace datasets {
namespace {

std::vector<fs::path> sorted_entries(const fs::path& dir, bool directories) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (directories ? entry.is_directory(ec) : (entry.is_regular_file(ec) && is_image_file(entry.path())))
      out.push_back(entry.path());
  }
  if (ec) throw DataError(fmt::format("{}: cannot list the folder: {}", dir.string(), ec.message()));
  std::sort(out.begin(), out.end());
  return out;
}

// A class folder's images, those in its subfolders too, as torchvision's ImageFolder takes
// them (they were passed over without a word): folder by folder in name order, each folder's
// images in name order. Symbolic links to folders are not followed, so no loop can form.
std::vector<fs::path> class_images(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_regular_file(ec) && is_image_file(it->path())) out.push_back(it->path());
  if (ec) throw DataError(fmt::format("{}: cannot list the folder: {}", dir.string(), ec.message()));
  // (folders compared as strings, as os.walk's roots sort: a/x-y before a/x/z)
  std::sort(out.begin(), out.end(), [](const fs::path& a, const fs::path& b) {
    return std::pair(a.parent_path().string(), a.filename().string()) <
           std::pair(b.parent_path().string(), b.filename().string());
  });
  return out;
}

}  // namespace

bool is_image_file(const fs::path& path) {
  std::string ext = path.extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

std::vector<std::string> image_folder_classes(const fs::path& dir) {
  std::vector<std::string> names;
  if (!sorted_entries(dir, false).empty()) return names;  // a folder of images: unlabelled
  for (const fs::path& sub : sorted_entries(dir, true))
    if (!class_images(sub).empty()) names.push_back(sub.filename().string());
  return names;
}

Dataset read_image_folder(const fs::path& dir, std::size_t channels, const std::vector<std::string>& classes) {
  std::vector<fs::path> files = sorted_entries(dir, false);
  std::vector<std::int32_t> labels;
  std::vector<std::string> names;
  // Images beside class subfolders (a stray preview.png): reading either alone would train on
  // part of the data without a word.
  for (const fs::path& sub : files.empty() ? std::vector<fs::path>{} : sorted_entries(dir, true))
    if (!class_images(sub).empty())
      throw DataError(fmt::format("{}: images ({}, e.g. {}) beside class subfolders of images ({}, ...); move them "
                                  "into a class subfolder, or point --data at one folder of images",
                                  dir.string(), files.size(), files.front().filename().string(),
                                  sub.filename().string()));
  if (files.empty()) {
    names = classes.empty() ? image_folder_classes(dir) : classes;
    for (const fs::path& sub : sorted_entries(dir, true)) {
      std::vector<fs::path> in_class = class_images(sub);
      if (in_class.empty()) continue;
      const auto name = std::find(names.begin(), names.end(), sub.filename().string());
      if (name == names.end())
        throw DataError(fmt::format("{}: class '{}' is not one of the training split's ({})", sub.string(),
                                    sub.filename().string(), fmt::join(names, ", ")));
      labels.insert(labels.end(), in_class.size(), static_cast<std::int32_t>(name - names.begin()));
      files.insert(files.end(), in_class.begin(), in_class.end());
    }
  }
  if (files.empty())
    throw DataError(fmt::format("{}: no PNG or JPEG images in the folder or in its subfolders", dir.string()));
  std::vector<std::uint8_t> pixels;
  std::size_t height = 0, width = 0;
  for (const fs::path& file : files) {
    const Image image = decode_image(read_file_bytes(file), channels, file.string());
    if (height == 0) {
      height = image.height;
      width = image.width;
    } else if (image.height != height || image.width != width) {
      throw DataError(fmt::format("{}: {}x{} pixels, but {} is {}x{}: every image must have one size",
                                  file.string(), image.width, image.height, files.front().string(), width, height));
    }
    pixels.insert(pixels.end(), image.pixels.begin(), image.pixels.end());
  }
  const std::size_t features = height * width * channels;
  Dataset d = names.empty() ? Dataset(std::move(pixels), features) : Dataset(std::move(pixels), features, std::move(labels));
  d.set_example_shape(channels == 1 ? std::vector<std::size_t>{height, width}
                                    : std::vector<std::size_t>{height, width, channels});
  d.set_label_names(names);
  return d;
}

}  // namespace datasets
