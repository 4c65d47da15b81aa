#include "nn/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include <fmt/format.h>

namespace nn {

namespace fs = std::filesystem;

void write_file_atomically(const fs::path& path, const std::function<void(const ByteSink&)>& fill) {
  fs::path tmp = path;
  tmp += ".tmp-" + std::to_string(::getpid());
  const std::string target = path.string();
  const char* keep = "the previous file, if any, is unchanged";
  auto error = [&](const std::string& what) {
    return FileWriteError(fmt::format("{}: {}: {}; {}", target, what, std::strerror(errno), keep));
  };

  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw error("cannot create temporary file " + tmp.string());
  try {
    fill([&](const void* p, std::size_t n) {
      const char* c = static_cast<const char*>(p);
      while (n > 0) {
        const ssize_t w = ::write(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) throw error("write failed");
        c += w;
        n -= static_cast<std::size_t>(w);
      }
    });
    // fsync before rename: otherwise a crash can leave the new name pointing at no data.
    if (::fsync(fd) != 0) throw error("fsync failed");
    const int closed = ::close(fd);
    fd = -1;
    if (closed != 0) throw error("close failed");
    if (std::rename(tmp.c_str(), path.c_str()) != 0) throw error("cannot rename " + tmp.string() + " over it");
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  // Make the rename itself durable; the data is already safe, so this is best effort.
  const fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  if (int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace nn
