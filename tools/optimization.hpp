// How `vae train` moves the weights: the optimizer (Adam, or AdamW with --weight-decay), the
// learning rate at each step (--lr, --lr-schedule, --lr-warmup) and gradient clipping
// (--clip-grad), built from the training options.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "autograd/parameter.hpp"
#include "optim/adam.hpp"
#include "optim/schedule.hpp"
#include "tools/options.hpp"

namespace tools {

/// Adam with --lr, or AdamW (decoupled weight decay, as torch.optim.AdamW) when --weight-decay > 0.
std::unique_ptr<optim::Adam> make_optimizer(std::vector<ag::Parameter*> params, const TrainOptions& o);

/// Settles the cosine's length before a run starts: --cosine-epochs, or the --epochs of a new
/// run (a resumed run keeps its checkpoint's). Throws FlagError for --epochs past its end,
/// where the learning rate is 0, and for --cosine-epochs without --lr-schedule cosine.
void settle_schedule(TrainOptions& o);

/// The learning rate of step t (counted from 0 over the whole run): a linear ramp over
/// --lr-warmup epochs, then --lr, constant or following half a cosine down to 0 at the end of
/// --cosine-epochs. A stateless function of t, so a resumed run continues the same curve.
std::unique_ptr<optim::Schedule> make_schedule(const TrainOptions& o, std::size_t steps_per_epoch);

/// "AdamW lr 0.001 (weight decay 0.01), cosine schedule, warm-up 1 epoch, gradients clipped to norm 5".
std::string describe_optimization(const TrainOptions& o);

}  // namespace tools
