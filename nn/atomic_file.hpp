// Writing a file so that a reader sees the old content or the new, never half of it:
// the bytes go to a temporary file in the same folder, which is fsynced and renamed over
// the target. Checkpoints, metrics and pictures are all written this way.
//
//   nn::write_file_atomically("metrics.csv", [&](const nn::ByteSink& write) {
//     write(text.data(), text.size());
//   });
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <stdexcept>

namespace nn {

/// Thrown when the file cannot be written; the message names it and says the previous
/// file (if any) is unchanged.
class FileWriteError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Appends n bytes to the file being written.
using ByteSink = std::function<void(const void* data, std::size_t n)>;

/// Calls `fill` with a sink for the new content, then makes it `path`'s content. On any
/// failure (including an exception from `fill`, which is rethrown) the temporary file is
/// removed and `path` is left as it was. The temporary is `path.tmp-<pid>`; those a killed
/// writer left behind for the same `path` (their pid no longer runs) are removed first.
void write_file_atomically(const std::filesystem::path& path, const std::function<void(const ByteSink&)>& fill);

}  // namespace nn
