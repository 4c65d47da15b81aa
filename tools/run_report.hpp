// What a training run shows people: curves.png (losses per epoch, redrawn after every
// epoch) and report.html, one self-contained page (pictures embedded) with the
// configuration, the figures, the curves and every picture of the run.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "tools/metrics_rows.hpp"  // EpochFigures

namespace tools {

/// Two panels: train and evaluation loss; reconstruction and KL (evaluation set).
void write_curves(const std::filesystem::path& path, const std::vector<EpochFigures>& epochs,
                  const std::string& eval_name);

/// report.html in `out`: `title`, `configuration` lines, the metrics table, and every PNG in
/// `pictures` (file names inside `out`) embedded as data URLs.
void write_report(const std::filesystem::path& out, const std::string& title,
                  const std::vector<std::string>& configuration, const std::vector<EpochFigures>& epochs,
                  const std::string& eval_name, const std::vector<std::string>& pictures);

}  // namespace tools
