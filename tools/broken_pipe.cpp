#include "tools/broken_pipe.hpp"

#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

namespace tools {
namespace {

struct sigaction g_old_pipe;

}  // namespace

BrokenPipeWatch::BrokenPipeWatch() {
  struct sigaction ignore = {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  sigaction(SIGPIPE, &ignore, &g_old_pipe);
}

BrokenPipeWatch::~BrokenPipeWatch() { sigaction(SIGPIPE, &g_old_pipe, nullptr); }

void flush_standard_output(const std::string& where) {
  if (std::fflush(stdout) == 0 && !std::ferror(stdout)) return;
  fmt::print(stderr, "vae train: the standard output was closed (its reader went away); training goes on, "
                     "and the figures of each epoch are in {}\n", where);
  const int null_device = open("/dev/null", O_WRONLY);
  if (null_device < 0) return;  // (then a later print fails, and says so)
  dup2(null_device, STDOUT_FILENO);
  close(null_device);
  std::clearerr(stdout);
}

}  // namespace tools
