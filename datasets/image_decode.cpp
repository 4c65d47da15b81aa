// One PNG or JPEG file to pixels: the bounds of image_bounds.hpp first, then stb_image, compiled
// here rather than linked so that it is built with our sanitizers (and seen by the fuzzer),
// decodes only the two formats this reader claims, and allocates from a budget: whatever a
// hostile file makes the decoder ask for, the total stays proportional to the file and the
// image its header declares, and past the budget stb_image fails cleanly ("outofmem").
#include <climits>
#include <cstdlib>
#include <memory>

#include <fmt/format.h>

#include "datasets/error.hpp"
#include "datasets/image_bounds.hpp"
#include "datasets/image_folder.hpp"

namespace datasets {
namespace {

// Bytes the decoder of the current image may still allocate (per thread, for the one decode
// running on it). Frees are not credited back: the budget bounds all the decoder ever asks for.
thread_local std::size_t allocation_budget = 0;
thread_local bool budget_exceeded = false;

bool charge(std::size_t bytes) {
  if (bytes > allocation_budget) {
    budget_exceeded = true;
    return false;
  }
  allocation_budget -= bytes;
  return true;
}

// Zeroed, so that stb_image's reads of fields it never set (its decoder state is malloc'd) give
// the same result on every run: the fuzzer found inputs whose fate depended on leftover memory.
void* budgeted_malloc(std::size_t bytes) { return charge(bytes) ? std::calloc(1, bytes) : nullptr; }

void* budgeted_realloc(void* p, std::size_t old_bytes, std::size_t new_bytes) {
  return charge(new_bytes > old_bytes ? new_bytes - old_bytes : 0) ? std::realloc(p, new_bytes) : nullptr;
}

}  // namespace
}  // namespace datasets

#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_NO_STDIO
#define STBI_MALLOC(bytes) datasets::budgeted_malloc(bytes)
#define STBI_REALLOC_SIZED(p, old_bytes, new_bytes) datasets::budgeted_realloc(p, old_bytes, new_bytes)
#define STBI_FREE(p) std::free(p)
#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wunused-function"
#elif defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#endif
#include <stb_image.h>
#if defined(__clang__)
#pragma clang diagnostic pop
#elif defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace datasets {
namespace {

// Larger images are refused before decoding: one example of 2^26 pixels is already more
// than a VAE of this framework can sensibly take.
constexpr std::size_t kMaxPixels = std::size_t{1} << 26;

}  // namespace

Image decode_image(std::string_view bytes, std::size_t channels, const std::string& source) {
  if (channels != 1 && channels != 3)
    throw DataError(fmt::format("{}: {} channels requested; 1 (gray) or 3 (RGB)", source, channels));
  if (bytes.size() > INT_MAX) throw DataError(fmt::format("{}: the file is too large", source));
  const auto* data = reinterpret_cast<const stbi_uc*>(bytes.data());
  const int length = static_cast<int>(bytes.size());
  check_png_bounds(bytes, source);
  check_jpeg_tables(bytes, source);
  int w = 0, h = 0, c = 0;
  if (!stbi_info_from_memory(data, length, &w, &h, &c))
    throw DataError(fmt::format("{}: not a PNG or JPEG image ({})", source, stbi_failure_reason()));
  const std::size_t pixels = static_cast<std::size_t>(w) * static_cast<std::size_t>(h);
  if (w <= 0 || h <= 0 || pixels > kMaxPixels)
    throw DataError(fmt::format("{}: {}x{} pixels is not a size this reader accepts (at most 2^26 pixels)", source, w, h));
  if (!is_png(bytes)) check_jpeg_size(bytes, w, h, source);  // PNG and JPEG are all stb_image decodes here
  // Room for the compressed data twice over, and 64 bytes per pixel: 16-bit RGBA is 8, and the
  // decoder holds the inflated rows, the image and a converted copy at most.
  allocation_budget = (std::size_t{1} << 20) + 4 * bytes.size() + 64 * pixels;
  budget_exceeded = false;
  std::unique_ptr<stbi_uc, void (*)(void*)> decoded(
      stbi_load_from_memory(data, length, &w, &h, &c, static_cast<int>(channels)), stbi_image_free);
  if (!decoded && budget_exceeded)
    throw DataError(fmt::format("{}: decoding this {}x{} image would take more memory than its size explains", source,
                                w, h));
  if (!decoded) throw DataError(fmt::format("{}: cannot decode the image ({})", source, stbi_failure_reason()));
  Image image{static_cast<std::size_t>(h), static_cast<std::size_t>(w), channels, {}};
  image.pixels.assign(decoded.get(), decoded.get() + image.height * image.width * channels);
  return image;
}

}  // namespace datasets
