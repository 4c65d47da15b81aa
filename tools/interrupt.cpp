#include "tools/interrupt.hpp"

#include <csignal>

namespace tools {
namespace {

volatile std::sig_atomic_t g_received = 0;
struct sigaction g_old_int, g_old_term;

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

}  // namespace tools
