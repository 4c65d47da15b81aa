// DataError: the one exception the datasets layer throws for bad input.
//
// A bad file must say what and where, so every message names the file, the byte offset
// when there is one, and what was expected versus what was found, e.g.
//   "data/train-images-idx3-ubyte.gz: truncated data: expected 47040000 bytes after the
//    16-byte header, the stream ends after 1000000"
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace datasets {

class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Text from a file as a message quotes it: control bytes escaped ("\\x00": a NUL ended the
/// message there), and cut after `max` bytes ("..."): a binary file read as text has
/// "cells" and headers of megabytes.
inline std::string shown(std::string_view text, std::size_t max = 40) {
  std::string out;
  for (std::size_t i = 0; i < text.size() && i < max; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    out += c < 0x20 || c == 0x7F ? fmt::format("\\x{:02x}", c) : std::string(1, text[i]);
  }
  return text.size() > max ? out + "..." : out;
}

/// A text file's content past the UTF-8 byte-order mark some editors write first. UTF-16 and
/// UTF-32 text (their marks start FF FE or FE FF), which the text readers do not read, is a
/// DataError naming `source`.
inline std::string_view without_utf8_mark(std::string_view text, std::string_view source) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  if (text.substr(0, 2) == "\xFF\xFE" || text.substr(0, 2) == "\xFE\xFF")
    throw DataError(fmt::format("{}: the file is UTF-16 or UTF-32 text (it starts with a byte-order mark); save it "
                                "as UTF-8 or ASCII", source));
  return text;
}

}  // namespace datasets
