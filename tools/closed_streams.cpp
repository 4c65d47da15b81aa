#include "tools/closed_streams.hpp"

#include <cerrno>
#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

namespace tools {

void open_closed_standard_streams(const char* program, const char* where) {
  bool output_closed = false;
  for (int fd = 0; fd <= 2; ++fd) {
    if (fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    // open() returns the lowest free descriptor, which is this one (the lower ones are open).
    const int null_device = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
    if (null_device >= 0 && null_device != fd) {
      dup2(null_device, fd);
      close(null_device);
    }
    output_closed = output_closed || fd == 1;
  }
  if (output_closed)
    fmt::print(stderr, "{}: the standard output is closed; what it would show is discarded{}\n", program, where);
}

}  // namespace tools
