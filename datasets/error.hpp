// DataError: the one exception the datasets layer throws for bad input.
//
// A bad file must say what and where, so every message names the file, the byte offset
// when there is one, and what was expected versus what was found, e.g.
//   "data/train-images-idx3-ubyte.gz: truncated data: expected 47040000 bytes after the
//    16-byte header, the stream ends after 1000000"
#pragma once

#include <stdexcept>

namespace datasets {

class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace datasets
