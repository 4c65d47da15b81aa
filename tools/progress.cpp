#include "tools/progress.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include <fmt/format.h>
#include <unistd.h>

namespace tools {

std::string clock_text(double seconds) {
  const auto s = static_cast<long long>(std::max(0.0, seconds) + 0.5);
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60) : fmt::format("{}:{:02}", s / 60, s % 60);
}

bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

ProgressBar::ProgressBar(std::string label, std::size_t total, bool enabled)
    : label_(std::move(label)),
      total_(total),
      enabled_(enabled),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

void ProgressBar::update(std::size_t done, double running_loss, std::size_t images) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (done != total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const double seconds = std::chrono::duration<double>(now - start_).count();
  constexpr std::size_t kWidth = 20, kColumns = 79;  // one column short of 80: no wrap
  const std::size_t filled = total_ ? done * kWidth / total_ : kWidth;
  const double eta = done ? seconds * static_cast<double>(total_ - done) / static_cast<double>(done) : 0.0;
  std::string line = fmt::format("{} [{}{}] {}/{} loss {} {:.0f} img/s ETA {}", label_, std::string(filled, '#'),
                                 std::string(kWidth - filled, '.'), done, total_, figure_text(running_loss, 2),
                                 seconds > 0 ? static_cast<double>(images) / seconds : 0.0, clock_text(eta));
  if (line.size() > kColumns) line.resize(kColumns);
  fmt::print(stderr, "\r{}\x1b[K", line);
  std::fflush(stderr);
}

std::string figure_text(double value, int decimals) {
  if (std::fabs(value) < 1e6 || !std::isfinite(value)) return fmt::format("{:.{}f}", value, decimals);
  return fmt::format("{:.2e}", value);
}

void ProgressBar::finish() {
  if (!enabled_) return;
  fmt::print(stderr, "\r\x1b[K");
  std::fflush(stderr);
}

}  // namespace tools
