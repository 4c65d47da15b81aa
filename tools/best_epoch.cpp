#include "tools/best_epoch.hpp"

#include <cmath>

namespace tools {

void BestEpoch::restore(const std::vector<EpochFigures>& epochs) {
  for (const EpochFigures& e : epochs) record(static_cast<std::size_t>(e.epoch), e.eval_loss);
}

bool BestEpoch::record(std::size_t epoch, double loss) {
  if (!std::isfinite(loss) || loss >= loss_) return false;
  epoch_ = epoch;
  loss_ = loss;
  return true;
}

}  // namespace tools
