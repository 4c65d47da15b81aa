#include "nn/atomic_file.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <system_error>

#include <fmt/format.h>

namespace nn {

namespace fs = std::filesystem;

namespace {

constexpr const char* kTempMarker = ".tmp-";

// The pid in "<target name>.tmp-<pid>", or 0 if `name` is not a temporary of that target.
pid_t temporary_pid(const std::string& name, const std::string& target_name) {
  const std::string prefix = target_name + kTempMarker;
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return 0;
  const std::string digits = name.substr(prefix.size());
  if (digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) return 0;
  return static_cast<pid_t>(std::stol(digits));
}

// A writer killed mid-write (kill -9, power loss) leaves its temporary behind. Removes the
// temporaries of this same target whose writer no longer runs; a live writer's file, another
// target's and anything not named by our pattern are left alone. Best effort: a folder that
// cannot be listed is no reason to fail the write.
void remove_stale_temporaries(const fs::path& path) {
  const fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  const std::string target_name = path.filename().string();
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const pid_t pid = temporary_pid(it->path().filename().string(), target_name);
    if (pid <= 0 || pid == ::getpid()) continue;
    if (!fs::is_regular_file(it->symlink_status(ec)) || ec) continue;
    // ESRCH: no such process. EPERM means it exists under another user: keep its file.
    if (::kill(pid, 0) != 0 && errno == ESRCH) ::unlink(it->path().c_str());
  }
}

}  // namespace

void write_file_atomically(const fs::path& path, const std::function<void(const ByteSink&)>& fill) {
  remove_stale_temporaries(path);
  fs::path tmp = path;
  tmp += kTempMarker + std::to_string(::getpid());
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
