// Bounds on what an image file may make the decoder allocate, checked before stb_image runs.
//
// stb_image trusts a file's own numbers: a PNG chunk that claims 2 GB makes it allocate 2 GB
// before it finds 80 bytes behind the claim, and a deflate stream is inflated to its end however
// far that is beyond the image the header describes. These checks read the same numbers first,
// so the memory a file can cost stays proportional to its size and to the image it declares.
#pragma once

#include <string>
#include <string_view>

namespace datasets {

// True if `bytes` start with the PNG signature.
bool is_png(std::string_view bytes);

// Throws DataError (naming `source`) unless the PNG in `bytes` is well formed at the chunk level
// (every chunk inside the file, an IHDR first) and its image data inflates to exactly the size
// its header implies. Bytes that are not a PNG pass unchecked.
void check_png_bounds(std::string_view bytes, const std::string& source);

// Throws DataError unless every Huffman table of the JPEG in `bytes` (any bytes that are not a
// PNG) holds at most 256 codes: Debian 12's stb_image writes past its table otherwise, already
// when it reads the header for the image's size, so this runs before stb_image sees the file.
void check_jpeg_tables(std::string_view bytes, const std::string& source);

// Throws DataError unless a `width` x `height` JPEG can plausibly be held in `bytes`: an 8x8
// block costs at least about two bits per component, so a header claiming millions of pixels in
// a few hundred bytes is refused before the decoder allocates for them.
void check_jpeg_size(std::string_view bytes, int width, int height, const std::string& source);

}  // namespace datasets
