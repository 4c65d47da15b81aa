// Examples from a folder of PNG/JPEG images of one size (decoded by libpng and libjpeg-turbo):
//   - images directly in the folder: unlabelled examples, in file-name order
//   - images in subfolders: one class per subfolder (sorted by name), labelled 0, 1, ...,
//     and the subfolder names become the label names; a class takes the images of its own
//     subfolders too, as torchvision's ImageFolder does (folder by folder in name order)
// Each image is converted to `channels` (1: gray, 3: RGB) and kept as bytes; an example's
// shape is {height, width} for gray, {height, width, 3} for RGB.
//
//   datasets::Dataset d = datasets::read_image_folder("faces/train", 1);
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "datasets/dataset.hpp"

namespace datasets {

/// One decoded image.
struct Image {
  std::size_t height = 0, width = 0, channels = 0;
  std::vector<std::uint8_t> pixels;  // row-major, channels interleaved
};

/// Decodes PNG/JPEG bytes into `channels` channels (a fuzzing entry point). Throws DataError.
Image decode_image(std::string_view bytes, std::size_t channels, const std::string& source);

/// The class subfolders of `dir` that hold images, sorted: the label names read_image_folder
/// gives it (none for a folder of images).
std::vector<std::string> image_folder_classes(const std::filesystem::path& dir);

/// Throws DataError for an empty folder, a file that is not an image, images of different sizes.
/// With `classes` (the training split's, for a test split), the class subfolders are labelled
/// by their place in that list, so a test split lacking a class keeps every other label; a
/// subfolder not in the list is refused.
Dataset read_image_folder(const std::filesystem::path& dir, std::size_t channels,
                          const std::vector<std::string>& classes = {});

/// Whether the file name ends in .png, .jpg or .jpeg (any case).
bool is_image_file(const std::filesystem::path& path);

}  // namespace datasets
