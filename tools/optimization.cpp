#include "tools/optimization.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace tools {

std::unique_ptr<optim::Adam> make_optimizer(std::vector<ag::Parameter*> params, const TrainOptions& o) {
  if (o.weight_decay > 0)
    return std::make_unique<optim::AdamW>(std::move(params), optim::AdamWOptions{.lr = o.lr, .weight_decay = o.weight_decay});
  return std::make_unique<optim::Adam>(std::move(params), optim::AdamOptions{.lr = o.lr});
}

void settle_schedule(TrainOptions& o) {
  if (o.lr_schedule != LrSchedule::cosine) {
    if (o.cosine_epochs > 0)
      throw FlagError(fmt::format("--cosine-epochs {}: only --lr-schedule cosine has a length", o.cosine_epochs));
    return;
  }
  if (o.cosine_epochs == 0) o.cosine_epochs = o.epochs;
  if (o.epochs > o.cosine_epochs)
    throw FlagError(fmt::format("--epochs {}: the cosine schedule ends at epoch {} (--cosine-epochs), where the learning "
                                "rate reaches 0; train no further than that, or start a new run with a longer schedule",
                                o.epochs, o.cosine_epochs));
}

std::unique_ptr<optim::Schedule> make_schedule(const TrainOptions& o, std::size_t steps_per_epoch) {
  const std::size_t epochs = o.lr_schedule == LrSchedule::cosine && o.cosine_epochs > 0 ? o.cosine_epochs : o.epochs;
  const std::size_t total = std::max<std::size_t>(1, epochs * steps_per_epoch);
  const auto warmup = std::min(total - 1, static_cast<std::size_t>(std::llround(o.lr_warmup * static_cast<double>(steps_per_epoch))));
  if (o.lr_schedule == LrSchedule::cosine) {
    optim::CosineAnnealingLR cosine(o.lr, total - warmup);
    if (warmup == 0) return std::make_unique<optim::CosineAnnealingLR>(cosine);
    return std::make_unique<optim::LinearWarmup>(warmup, cosine);
  }
  if (warmup == 0) return std::make_unique<optim::ConstantLR>(o.lr);
  return std::make_unique<optim::LinearWarmup>(warmup, o.lr);
}

std::string describe_optimization(const TrainOptions& o) {
  std::string text = o.weight_decay > 0 ? fmt::format("AdamW lr {} (weight decay {})", o.lr, o.weight_decay)
                                        : fmt::format("Adam lr {}", o.lr);
  if (o.lr_schedule == LrSchedule::cosine) text += ", cosine schedule";
  if (o.lr_warmup > 0) text += fmt::format(", lr warm-up {} epochs", o.lr_warmup);
  if (o.clip_grad > 0) text += fmt::format(", gradients clipped to norm {}", o.clip_grad);
  return text;
}

}  // namespace tools
