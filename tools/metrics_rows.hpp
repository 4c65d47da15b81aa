// The rows of a run's metrics: metrics.csv after its header, and a checkpoint's state.metrics,
// one row per epoch:
//   epoch,train_loss,test_loss,recon,kl,seconds,beta,lr
// written, checked (a resumed checkpoint's text is outside data), completed and read here.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace tools {

/// metrics.csv's header line.
inline constexpr const char* kMetricsHeader = "epoch,train_loss,test_loss,recon,kl,seconds,beta,lr\n";

/// One epoch's figures, as the curves and the report read them.
struct EpochFigures {
  double epoch, train_loss, eval_loss, recon, kl;
};

/// One row, with its line end.
std::string metrics_row(std::size_t epoch, double train_loss, double eval_loss, double recon, double kl, double seconds,
                        double beta, double lr);

/// Throws datasets::DataError naming `source` unless `rows` are exactly `epochs` rows, row k
/// epoch k's eight figures.
void check_metrics_rows(const std::string& rows, std::size_t epochs, const std::string& source);

/// Rows written before the lr column existed (seven figures) get theirs, lr_after(epoch), so
/// that every row has the header's columns; other rows stay as they are.
std::string with_lr_column(const std::string& rows, const std::function<double(std::size_t)>& lr_after);

/// The rows' figures (rows that do not begin with five numbers are skipped).
std::vector<EpochFigures> parse_metrics(const std::string& rows);

}  // namespace tools
