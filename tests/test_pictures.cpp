// tools/pictures: each value lands in its pixel (gray and RGB); any picture size is either
// drawn (at a smaller scale if need be) or skipped with a warning; nothing crashes and a
// skipped picture overwrites nothing.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

#include <cairo.h>

#include "autograd/array.hpp"
#include "temp_dir.hpp"
#include "tools/pictures.hpp"

namespace fs = std::filesystem;

namespace {

// Width and height from a PNG's IHDR chunk (big-endian u32 at bytes 16 and 20).
std::pair<std::uint32_t, std::uint32_t> png_size(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::string b(std::istreambuf_iterator<char>(in), {});
  REQUIRE(b.size() > 24);
  REQUIRE(b.substr(1, 3) == "PNG");
  auto u32 = [&](std::size_t at) {
    std::uint32_t v = 0;
    for (std::size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(b[at + i]);
    return v;
  };
  return {u32(16), u32(20)};
}

ag::Array gray(std::size_t n, std::size_t features) {
  ag::Array a = ag::Array::from_shape({n, features});
  for (std::size_t i = 0; i < a.size(); ++i) a.data()[i] = static_cast<float>(i % 7) / 6.0F;
  return a;
}

}  // namespace

TEST_CASE("a grid of the usual size is drawn at the asked scale") {
  TempDir dir("pictures");
  const fs::path path = dir.path / "samples.png";
  CHECK(pictures::write_grid(path.string(), gray(64, 28 * 28), 28, 28, 8));
  // 8 columns of (28 * 2 + 2) pixels, plus the last gap.
  CHECK(png_size(path) == std::pair<std::uint32_t, std::uint32_t>{8 * 58 + 2, 8 * 58 + 2});
}

TEST_CASE("a grid too large at the asked scale is drawn smaller") {
  TempDir dir("pictures");
  const fs::path path = dir.path / "wide.png";
  // One 1 x 20000 image: 40004 pixels wide at scale 2, past cairo's 32767; 20004 at scale 1.
  CHECK(pictures::write_grid(path.string(), gray(1, 20000), 1, 20000, 1, 2));
  CHECK(png_size(path) == std::pair<std::uint32_t, std::uint32_t>{20004, 5});
}

TEST_CASE("a grid too large even at scale 1 is skipped and overwrites nothing") {
  TempDir dir("pictures");
  const fs::path path = dir.path / "samples.png";
  std::ofstream(path) << "the previous picture";
  // Too wide: one 1 x 40000 image is 40004 pixels at scale 1.
  CHECK_FALSE(pictures::write_grid(path.string(), gray(1, 40000), 1, 40000, 1, 2));
  // Too many pixels in all: 64 images of 1500 x 1 in one column, 2^26 pixels and more.
  CHECK_FALSE(pictures::write_grid(path.string(), gray(64, 1500), 1500, 1, 1, 1));
  // Hostile sizes whose pixel count overflows 64 bits.
  CHECK_FALSE(pictures::write_grid(path.string(), gray(2, 4), 2, 2, std::size_t{1} << 62, 1 << 30));
  std::ifstream in(path);
  CHECK(std::string(std::istreambuf_iterator<char>(in), {}) == "the previous picture");
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path)) ++entries;
  CHECK(entries == 1);  // no temporary left
}

TEST_CASE("a scatter plot is drawn; empty or mismatched input is refused") {
  TempDir dir("pictures");
  const fs::path path = dir.path / "latent.png";
  CHECK(pictures::write_scatter(path.string(), gray(50, 2), std::vector<int>(50, 1), {"a", "b"}, "t"));
  CHECK(png_size(path) == std::pair<std::uint32_t, std::uint32_t>{890, 720});
  CHECK_THROWS_AS(pictures::write_scatter(path.string(), gray(0, 2), {}, {}, "t"), std::invalid_argument);
  CHECK_THROWS_AS(pictures::write_scatter(path.string(), gray(3, 2), {1}, {}, "t"), std::invalid_argument);
}

TEST_CASE("gray and RGB grids put each value in its pixel") {
  TempDir dir("pictures");
  const fs::path path = dir.path / "grid.png";
  // Two 2 x 3 RGB images, channels interleaved; pixel (y, x) of image k is at
  // (2 + y, 2 + k * (3 + 2) + x) at scale 1.
  ag::Array rgb = ag::Array::from_shape({2, 2 * 3 * 3});
  for (std::size_t i = 0; i < rgb.size(); ++i) rgb.data()[i] = static_cast<float>(i % 5) / 4.0F;
  REQUIRE(pictures::write_grid(path.string(), rgb, 2, 3, 2, 1, 3));
  auto pixel_at = [&](std::size_t y, std::size_t x) {
    cairo_surface_t* s = cairo_image_surface_create_from_png(path.string().c_str());
    REQUIRE(cairo_surface_status(s) == CAIRO_STATUS_SUCCESS);
    const unsigned char* data = cairo_image_surface_get_data(s);
    const auto stride = static_cast<std::size_t>(cairo_image_surface_get_stride(s));
    const std::uint32_t v = *reinterpret_cast<const std::uint32_t*>(data + (y * stride) + x * 4) & 0xFFFFFF;
    cairo_surface_destroy(s);
    return v;
  };
  auto byte = [&](std::size_t k, std::size_t at) {
    return static_cast<std::uint32_t>(std::lround(rgb(k, at) * 255.0F));
  };
  for (std::size_t k = 0; k < 2; ++k)
    for (std::size_t y = 0; y < 2; ++y)
      for (std::size_t x = 0; x < 3; ++x) {
        const std::size_t at = (y * 3 + x) * 3;
        CHECK(pixel_at(2 + y, 2 + k * 5 + x) == ((byte(k, at) << 16) | (byte(k, at + 1) << 8) | byte(k, at + 2)));
      }
  CHECK(pixel_at(0, 0) == 0x404040);  // the gap
  // Gray: r = g = b = the value.
  REQUIRE(pictures::write_grid(path.string(), gray(1, 6), 2, 3, 1, 1));
  const auto g = static_cast<std::uint32_t>(std::lround(gray(1, 6)(0, 4) * 255.0F));  // pixel (1, 1)
  CHECK(pixel_at(3, 3) == ((g << 16) | (g << 8) | g));
  CHECK_THROWS_AS(pictures::write_grid(path.string(), rgb, 2, 3, 2, 1, 2), std::invalid_argument);
}
