// One PNG or JPEG file to pixels, through the libraries every distribution keeps patched and
// OSS-Fuzz keeps fuzzing: libpng (its simplified API) and libjpeg-turbo. Before either allocates
// for the image, the size its header claims is checked against what the file's bytes can hold
// (image_bounds.hpp), so a small hostile file cannot make the reader allocate gigabytes.
#include <csetjmp>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>
#include <jpeglib.h>
#include <png.h>

#include "datasets/error.hpp"
#include "datasets/image_bounds.hpp"
#include "datasets/image_folder.hpp"

namespace datasets {
namespace {

// Larger images are refused before decoding: one example of 2^26 pixels is already more
// than a VAE of this framework can sensibly take.
constexpr std::size_t kMaxPixels = std::size_t{1} << 26;

void check_pixel_count(std::size_t width, std::size_t height, const std::string& source) {
  if (width == 0 || height == 0 || width * height > kMaxPixels)
    throw DataError(fmt::format("{}: {}x{} pixels is not a size this reader accepts (at most 2^26 pixels)", source,
                                width, height));
}

Image decode_png(std::string_view bytes, std::size_t channels, const std::string& source) {
  check_png_bounds(bytes, source);
  png_image png;
  std::memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&png, bytes.data(), bytes.size()))
    throw DataError(fmt::format("{}: not a readable PNG ({})", source, png.message));
  // From here libpng holds memory until png_image_free, also when the size is refused or the
  // pixels cannot be allocated (a 100000 x 100000 PNG leaked its structs).
  struct Release {
    png_image* png;
    ~Release() { png_image_free(png); }
  } release{&png};
  check_pixel_count(png.width, png.height, source);
  // Gray or RGB, 8 bits, alpha composited onto black as the libpng simplified API does.
  png.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  Image image{png.height, png.width, channels, std::vector<std::uint8_t>(PNG_IMAGE_SIZE(png))};
  if (!png_image_finish_read(&png, nullptr, image.pixels.data(), 0, nullptr))
    throw DataError(fmt::format("{}: cannot decode the PNG ({})", source, png.message));
  return image;
}

// One row of CMYK pixels to RGB or gray. Adobe's files (those with its marker, nearly all) store
// the inks inverted, 255 meaning none; the others store the inks. Each channel is then the
// light its ink and the black let through: R = (255 - C)(255 - K) / 255, and gray is that RGB's
// luma, with libjpeg's weights for gray from color.
void cmyk_to_rgb_or_gray(const JSAMPLE* cmyk, std::size_t width, std::size_t channels, bool inverted,
                         JSAMPLE* out) {
  const auto light = [inverted](JSAMPLE ink, JSAMPLE black) {
    const unsigned through = inverted ? ink : 255U - ink, black_through = inverted ? black : 255U - black;
    return (through * black_through + 127U) / 255U;
  };
  for (std::size_t x = 0; x < width; ++x, cmyk += 4) {
    const unsigned r = light(cmyk[0], cmyk[3]), g = light(cmyk[1], cmyk[3]), b = light(cmyk[2], cmyk[3]);
    if (channels == 1) {
      *out++ = static_cast<JSAMPLE>((19595U * r + 38470U * g + 7471U * b + 32768U) >> 16);
    } else {
      *out++ = static_cast<JSAMPLE>(r);
      *out++ = static_cast<JSAMPLE>(g);
      *out++ = static_cast<JSAMPLE>(b);
    }
  }
}

// libjpeg reports errors by calling error_exit, which must not return: it jumps back to the
// setjmp in read_jpeg with the message formatted.
struct JpegErrors {
  jpeg_error_mgr manager;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void jpeg_error_exit(j_common_ptr jpeg) {
  auto* errors = reinterpret_cast<JpegErrors*>(jpeg->err);
  errors->manager.format_message(jpeg, errors->message);
  std::longjmp(errors->jump, 1);
}

void jpeg_ignore_message(j_common_ptr, int) {}

// The libjpeg calls, with no C++ object whose destructor a longjmp could skip: the results go
// to `out` (sized here once the header is read) and `message`. Returns false on any error.
bool read_jpeg(std::string_view bytes, std::size_t channels, std::size_t memory_budget, Image* out,
               JpegErrors* errors, const std::string& source, std::string* bounds_error) {
  jpeg_decompress_struct jpeg;
  jpeg.err = jpeg_std_error(&errors->manager);
  errors->manager.error_exit = jpeg_error_exit;
  errors->manager.emit_message = jpeg_ignore_message;  // warnings (corrupt data) are not fatal
  errors->message[0] = '\0';
  if (setjmp(errors->jump)) {
    jpeg_destroy_decompress(&jpeg);
    return false;
  }
  jpeg_create_decompress(&jpeg);
  jpeg.mem->max_memory_to_use = static_cast<long>(memory_budget);
  jpeg_mem_src(&jpeg, reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&jpeg, TRUE);
  try {
    check_pixel_count(jpeg.image_width, jpeg.image_height, source);
    check_jpeg_size(bytes, static_cast<int>(jpeg.image_width), static_cast<int>(jpeg.image_height), source);
  } catch (const DataError& e) {
    *bounds_error = e.what();
    jpeg_destroy_decompress(&jpeg);
    return false;
  }
  // libjpeg converts YCbCr and gray to either; CMYK and YCCK (print files) only come out as
  // CMYK, converted here.
  const bool cmyk = jpeg.jpeg_color_space == JCS_CMYK || jpeg.jpeg_color_space == JCS_YCCK;
  jpeg.out_color_space = cmyk ? JCS_CMYK : channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&jpeg);
  out->height = jpeg.output_height;
  out->width = jpeg.output_width;
  out->channels = channels;
  out->pixels.resize(out->height * out->width * channels);
  JSAMPARRAY cmyk_row =  // freed by jpeg_destroy_decompress, also after an error
      cmyk ? (*jpeg.mem->alloc_sarray)(reinterpret_cast<j_common_ptr>(&jpeg), JPOOL_IMAGE, jpeg.output_width * 4, 1)
           : nullptr;
  while (jpeg.output_scanline < jpeg.output_height) {
    JSAMPROW row = out->pixels.data() + std::size_t{jpeg.output_scanline} * out->width * channels;
    if (!cmyk) {
      jpeg_read_scanlines(&jpeg, &row, 1);
      continue;
    }
    jpeg_read_scanlines(&jpeg, cmyk_row, 1);
    cmyk_to_rgb_or_gray(cmyk_row[0], out->width, channels, jpeg.saw_Adobe_marker, row);
  }
  jpeg_finish_decompress(&jpeg);
  jpeg_destroy_decompress(&jpeg);
  return true;
}

Image decode_jpeg(std::string_view bytes, std::size_t channels, const std::string& source) {
  // What libjpeg may allocate beyond the output image (progressive files keep every
  // coefficient): a few bytes per pixel the file can plausibly encode, and 64 MiB at least.
  const std::size_t memory_budget = (std::size_t{64} << 20) + 8 * jpeg_pixel_limit(bytes);
  Image image;
  JpegErrors errors;
  std::string bounds_error;
  if (!read_jpeg(bytes, channels, memory_budget, &image, &errors, source, &bounds_error)) {
    if (!bounds_error.empty()) throw DataError(bounds_error);
    throw DataError(fmt::format("{}: cannot decode the JPEG ({})", source, errors.message));
  }
  return image;
}

}  // namespace

Image decode_image(std::string_view bytes, std::size_t channels, const std::string& source) {
  if (channels != 1 && channels != 3)
    throw DataError(fmt::format("{}: {} channels requested; 1 (gray) or 3 (RGB)", source, channels));
  if (is_png(bytes)) return decode_png(bytes, channels, source);
  if (is_jpeg(bytes)) return decode_jpeg(bytes, channels, source);
  throw DataError(fmt::format("{}: not a PNG or JPEG image (its first bytes are neither signature)", source));
}

}  // namespace datasets
