#include "datasets/image_bounds.hpp"

#include <array>

#include <fmt/format.h>

#include "datasets/error.hpp"

namespace datasets {
namespace {

constexpr std::string_view kPngSignature("\x89PNG\r\n\x1a\n", 8);

std::uint32_t read_be32(std::string_view bytes, std::size_t at) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
  return v;
}

}  // namespace

bool is_png(std::string_view bytes) { return bytes.substr(0, kPngSignature.size()) == kPngSignature; }

bool is_jpeg(std::string_view bytes) {
  return bytes.size() >= 3 && static_cast<unsigned char>(bytes[0]) == 0xFF &&
         static_cast<unsigned char>(bytes[1]) == 0xD8 && static_cast<unsigned char>(bytes[2]) == 0xFF;
}

void check_png_bounds(std::string_view bytes, const std::string& source) {
  std::uint64_t width = 0, height = 0, bits_per_pixel = 0, compressed = 0;
  bool seen_header = false;
  for (std::size_t at = kPngSignature.size(); at + 8 <= bytes.size();) {
    const std::uint64_t length = read_be32(bytes, at);
    const std::string_view type = bytes.substr(at + 4, 4);
    if (length + 12 > bytes.size() - at)
      throw DataError(fmt::format("{}: the PNG chunk '{}' at byte {} claims {} bytes, past the end of the {}-byte file",
                                  source, type, at, length, bytes.size()));
    if (type == "IHDR" && length == 13 && !seen_header) {
      width = read_be32(bytes, at + 8);
      height = read_be32(bytes, at + 12);
      // Samples per pixel by colour type: gray, -, RGB, palette index, gray+alpha, -, RGBA.
      static constexpr std::array<std::uint64_t, 7> samples{1, 0, 3, 1, 2, 0, 4};
      const auto color = static_cast<unsigned char>(bytes[at + 17]);
      bits_per_pixel = static_cast<unsigned char>(bytes[at + 16]) * (color < 7 ? samples[color] : 0);
      seen_header = true;
    } else if (type == "IDAT") {
      compressed += length;
    } else if (type == "IEND") {
      break;
    }
    at += 12 + length;
  }
  if (!seen_header) return;  // libpng names what is wrong
  // Every row is a filter byte and its pixels, whether or not the image is interlaced (which
  // only adds filter bytes); deflate expands at most about 1032:1.
  const std::uint64_t row = 1 + (width * bits_per_pixel + 7) / 8;
  if (height * row > 1032 * compressed + 1024)
    throw DataError(fmt::format("{}: the header claims {}x{} pixels, more than a {}-byte PNG can hold", source, width,
                                height, bytes.size()));
}

std::uint64_t jpeg_pixel_limit(std::string_view bytes) { return 4096 * std::uint64_t{bytes.size()} + 65536; }

void check_jpeg_size(std::string_view bytes, int width, int height, const std::string& source) {
  const std::uint64_t pixels = static_cast<std::uint64_t>(width) * static_cast<std::uint64_t>(height);
  if (pixels > jpeg_pixel_limit(bytes))
    throw DataError(fmt::format("{}: the JPEG header claims {}x{} pixels, more than {} bytes can encode", source,
                                width, height, bytes.size()));
}

}  // namespace datasets
