#include "datasets/image_bounds.hpp"

#include <algorithm>
#include <array>
#include <cstdint>

#include <fmt/format.h>
#include <zlib.h>

#include "datasets/error.hpp"

namespace datasets {
namespace {

constexpr std::string_view kPngSignature("\x89PNG\r\n\x1a\n", 8);

std::uint32_t read_be32(std::string_view bytes, std::size_t at) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
  return v;
}

// Bytes of one filtered row: a filter byte and `width` pixels of `bits_per_pixel`.
std::uint64_t row_bytes(std::uint64_t width, std::uint64_t bits_per_pixel) {
  return width == 0 ? 0 : 1 + (width * bits_per_pixel + 7) / 8;
}

// The exact size of the inflated image data the header describes, Adam7 passes included.
std::uint64_t png_raw_size(std::uint64_t w, std::uint64_t h, std::uint64_t bits_per_pixel, bool interlaced) {
  if (!interlaced) return h * row_bytes(w, bits_per_pixel);
  // Adam7: each pass takes every dx-th pixel from column x0 of every dy-th row from row y0.
  static constexpr std::array<std::array<std::uint64_t, 4>, 7> passes{{
      {0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4}, {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}}};
  std::uint64_t total = 0;
  for (const auto& [x0, y0, dx, dy] : passes) {
    const std::uint64_t pw = w > x0 ? (w - x0 + dx - 1) / dx : 0;
    const std::uint64_t ph = h > y0 ? (h - y0 + dy - 1) / dy : 0;
    total += ph * row_bytes(pw, bits_per_pixel);
  }
  return total;
}

// Inflates the concatenated IDAT data into a fixed scratch buffer, counting the bytes, and stops
// as soon as the count passes `limit`: the check costs one 64 KiB buffer whatever the file says.
std::uint64_t inflated_size_up_to(std::string_view compressed, std::uint64_t limit, const std::string& source) {
  z_stream z{};
  if (inflateInit(&z) != Z_OK) throw DataError(fmt::format("{}: cannot start zlib", source));
  std::array<unsigned char, 1 << 16> scratch;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  z.avail_in = static_cast<uInt>(compressed.size());
  std::uint64_t total = 0;
  int status = Z_OK;
  while (status == Z_OK && total <= limit) {
    z.next_out = scratch.data();
    z.avail_out = static_cast<uInt>(scratch.size());
    status = inflate(&z, Z_NO_FLUSH);
    total += scratch.size() - z.avail_out;
    if (status == Z_BUF_ERROR && z.avail_in == 0) break;  // the stream ends early: stb says so
  }
  inflateEnd(&z);
  return total;
}

}  // namespace

bool is_png(std::string_view bytes) { return bytes.substr(0, kPngSignature.size()) == kPngSignature; }

void check_png_bounds(std::string_view bytes, const std::string& source) {
  if (!is_png(bytes)) return;
  std::uint64_t width = 0, height = 0, bits_per_pixel = 0;
  bool interlaced = false, seen_header = false;
  std::string image_data;
  for (std::size_t at = kPngSignature.size(); at + 8 <= bytes.size();) {
    const std::uint64_t length = read_be32(bytes, at);
    const std::string_view type = bytes.substr(at + 4, 4);
    if (length + 12 > bytes.size() - at)
      throw DataError(fmt::format("{}: the PNG chunk '{}' at byte {} claims {} bytes, past the end of the {}-byte file",
                                  source, type, at, length, bytes.size()));
    const std::string_view data = bytes.substr(at + 8, length);
    if (!seen_header && type != "IHDR") throw DataError(fmt::format("{}: the PNG does not start with IHDR", source));
    if (type == "IHDR") {
      if (length != 13) throw DataError(fmt::format("{}: the PNG's IHDR has {} bytes, not 13", source, length));
      width = read_be32(data, 0);
      height = read_be32(data, 4);
      const std::uint64_t depth = static_cast<unsigned char>(data[8]);
      const int color = static_cast<unsigned char>(data[9]);
      // Samples per pixel by colour type: gray, -, RGB, palette index, gray+alpha, -, RGBA.
      static constexpr std::array<int, 7> samples{1, 0, 3, 1, 2, 0, 4};
      if (color > 6 || samples[color] == 0 || depth == 0 || depth > 16)
        throw DataError(fmt::format("{}: the PNG's colour type {} with depth {} is not valid", source, color, depth));
      bits_per_pixel = depth * samples[color];
      interlaced = data[12] != 0;
      seen_header = true;
    } else if (type == "IDAT") {
      image_data.append(data);
    } else if (type == "IEND") {
      break;
    }
    at += 12 + length;
  }
  if (!seen_header) return;  // stb_image reports what is missing
  // Deflate expands at most about 1032:1, and stb_image allocates the header's size up front.
  const std::uint64_t expected = png_raw_size(width, height, bits_per_pixel, interlaced);
  if (expected > 1032 * static_cast<std::uint64_t>(image_data.size()) + 1024)
    throw DataError(fmt::format("{}: the header claims {}x{} pixels, more than a {}-byte PNG can hold", source, width,
                                height, bytes.size()));
  if (image_data.empty()) return;
  const std::uint64_t inflated = inflated_size_up_to(image_data, expected, source);
  if (inflated != expected)
    throw DataError(fmt::format("{}: the PNG's image data inflates to {}{} bytes, but its {}x{} header implies {}",
                                source, inflated > expected ? "more than " : "", inflated > expected ? expected : inflated,
                                width, height, expected));
}

void check_jpeg_size(std::string_view bytes, int width, int height, const std::string& source) {
  // Two bits per 8x8 block is the least entropy coding can spend, so one byte holds at most 256
  // pixels of one component; 4096 per byte leaves a wide margin for any real JPEG.
  const std::uint64_t pixels = static_cast<std::uint64_t>(width) * static_cast<std::uint64_t>(height);
  if (pixels > 4096 * static_cast<std::uint64_t>(bytes.size()) + 65536)
    throw DataError(fmt::format("{}: the JPEG header claims {}x{} pixels, more than {} bytes can encode", source,
                                width, height, bytes.size()));
}

void check_jpeg_tables(std::string_view bytes, const std::string& source) {
  // Past the end stb_image reads zeros, and so does this walk.
  const auto byte = [&](std::size_t at) -> unsigned char {
    return at < bytes.size() ? static_cast<unsigned char>(bytes[at]) : 0;
  };
  if (is_png(bytes)) return;
  // The segments, to check every Huffman table (DHT) before stb_image builds it: the version of
  // stb_image in Debian 12 writes past its 257-entry code-size table when a DHT's sixteen counts
  // add up to more than 256 (found by fuzz_image). The walk reads the file as stb_image does:
  // bytes before and between segments are skipped up to the next 0xFF (stb_image takes
  // "FF FF D8" for a start of image too, so every file that is not a PNG is walked), a DHT's tables are read by their own
  // counts (even past the segment's length, and past the file's end as zeros), and a scan's
  // entropy-coded data runs to the first 0xFF that is not followed by 0x00 or a restart marker.
  std::size_t at = 0;
  while (at + 4 <= bytes.size()) {
    if (byte(at) != 0xFF) { ++at; continue; }
    const unsigned char marker = byte(at + 1);
    if (marker == 0xFF || marker == 0x00) { ++at; continue; }
    if (marker == 0xD9) return;  // EOI
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) { at += 2; continue; }  // no length
    const std::size_t length = (std::size_t{byte(at + 2)} << 8) | byte(at + 3);
    if (marker == 0xC4) {
      std::size_t table = at + 4;
      for (std::ptrdiff_t left = static_cast<std::ptrdiff_t>(length) - 2; left > 0;) {
        std::size_t codes = 0;
        for (std::size_t i = 1; i <= 16; ++i) codes += byte(table + i);
        if (codes > 256)
          throw DataError(fmt::format("{}: the JPEG's Huffman table at byte {} has {} codes, more than 256", source,
                                      table, codes));
        table += 17 + codes;
        left -= static_cast<std::ptrdiff_t>(17 + codes);
      }
    }
    at += 2 + std::max<std::size_t>(length, 2);
    if (marker == 0xDA) {
      while (at + 1 < bytes.size() &&
             !(byte(at) == 0xFF && byte(at + 1) != 0x00 && !(byte(at + 1) >= 0xD0 && byte(at + 1) <= 0xD7)))
        ++at;
    }
  }
}

}  // namespace datasets
