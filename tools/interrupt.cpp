#include "tools/interrupt.hpp"

#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

namespace tools {
namespace {

volatile std::sig_atomic_t g_received = 0;
struct sigaction g_old_int, g_old_term, g_old_pipe;

// SA_RESETHAND puts the default action back as the handler runs: a second signal ends the
// program even if the loop is stuck in a long step.
extern "C" void note_signal(int signal_number) { g_received = signal_number; }

}  // namespace

InterruptWatch::InterruptWatch() {
  g_received = 0;
  struct sigaction action = {};
  action.sa_handler = note_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESETHAND;
  sigaction(SIGINT, &action, &g_old_int);
  sigaction(SIGTERM, &action, &g_old_term);
}

InterruptWatch::~InterruptWatch() {
  sigaction(SIGINT, &g_old_int, nullptr);
  sigaction(SIGTERM, &g_old_term, nullptr);
}

int InterruptWatch::received() { return g_received; }

std::string InterruptWatch::name(int signal_number) {
  return signal_number == SIGINT ? "SIGINT" : signal_number == SIGTERM ? "SIGTERM" : "a signal";
}

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
