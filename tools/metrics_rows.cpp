#include "tools/metrics_rows.hpp"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include <fmt/format.h>

#include "datasets/error.hpp"

namespace tools {

std::string metrics_row(std::size_t epoch, double train_loss, double eval_loss, double recon, double kl, double seconds,
                        double beta, double lr) {
  return fmt::format("{},{:.4f},{:.4f},{:.4f},{:.4f},{:.3f},{:.6g},{:.6g}\n", epoch, train_loss, eval_loss, recon, kl,
                     seconds, beta, lr);
}

// Text tampered with went on into metrics.csv as it was, and the best epoch was read from it.
void check_metrics_rows(const std::string& rows, std::size_t epochs, const std::string& source) {
  std::stringstream in(rows);
  std::size_t epoch = 0;
  for (std::string line; std::getline(in, line);) {
    ++epoch;
    double v[8];
    int used = 0;
    const bool figures = std::sscanf(line.c_str(), "%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf%n", &v[0], &v[1], &v[2], &v[3],
                                     &v[4], &v[5], &v[6], &v[7], &used) == 8 &&
                         static_cast<std::size_t>(used) == line.size() && v[0] == static_cast<double>(epoch);
    if (!figures)
      throw datasets::DataError(fmt::format("{}: its metrics (state.metrics), line {}, are not epoch {}'s figures: '{}'",
                                            source, epoch, epoch, datasets::shown(line, 80)));
  }
  if (epoch != epochs)
    throw datasets::DataError(
        fmt::format("{}: its metrics (state.metrics) hold {} epoch(s), its metadata says {}", source, epoch, epochs));
}

std::string with_lr_column(const std::string& rows, const std::function<double(std::size_t)>& lr_after) {
  std::string out;
  std::stringstream in(rows);
  for (std::string line; std::getline(in, line);) {
    out += line;
    std::size_t epoch = 0;
    if (std::count(line.begin(), line.end(), ',') == 6 && std::sscanf(line.c_str(), "%zu,", &epoch) == 1 && epoch > 0)
      out += fmt::format(",{:.6g}", lr_after(epoch));
    out += '\n';
  }
  return out;
}

std::vector<EpochFigures> parse_metrics(const std::string& rows) {
  std::vector<EpochFigures> out;
  std::stringstream in(rows);
  for (std::string line; std::getline(in, line);) {
    EpochFigures e{};
    if (std::sscanf(line.c_str(), "%lf,%lf,%lf,%lf,%lf", &e.epoch, &e.train_loss, &e.eval_loss, &e.recon, &e.kl) == 5)
      out.push_back(e);
  }
  return out;
}

}  // namespace tools
