#include "tools/progress.hpp"

#include <cstdio>

#include <fmt/format.h>
#include <unistd.h>

namespace tools {

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
  constexpr std::size_t kWidth = 24;
  const std::size_t filled = total_ ? done * kWidth / total_ : kWidth;
  fmt::print(stderr, "\r{} [{}{}] {}/{}  loss {:.2f}  {:.0f} img/s \x1b[K", label_,
             std::string(filled, '#'), std::string(kWidth - filled, '.'), done, total_,
             running_loss, seconds > 0 ? static_cast<double>(images) / seconds : 0.0);
  std::fflush(stderr);
}

void ProgressBar::finish() {
  if (!enabled_) return;
  fmt::print(stderr, "\r\x1b[K");
  std::fflush(stderr);
}

}  // namespace tools
