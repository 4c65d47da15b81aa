// How large an image a PNG or JPEG file can honestly hold, checked before a decoder allocates
// room for the size its header claims: a 100-byte file claiming 8000x8000 pixels is refused
// with a message instead of costing hundreds of megabytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace datasets {

// True if `bytes` start with the PNG signature.
bool is_png(std::string_view bytes);

// True if `bytes` start with a JPEG start-of-image marker.
bool is_jpeg(std::string_view bytes);

// Throws DataError (naming `source`) unless every chunk of the PNG in `bytes` lies inside the
// file and the image its IHDR describes could come out of the compressed data it holds (deflate
// expands at most about 1032:1).
void check_png_bounds(std::string_view bytes, const std::string& source);

// The most pixels a JPEG of this many bytes can plausibly encode: an 8x8 block costs at least
// about two bits per component, so one byte holds at most 256 pixels; 4096 per byte leaves a
// wide margin for any real file.
std::uint64_t jpeg_pixel_limit(std::string_view bytes);

// Throws DataError unless a `width` x `height` JPEG stays within jpeg_pixel_limit(bytes).
void check_jpeg_size(std::string_view bytes, int width, int height, const std::string& source);

}  // namespace datasets
