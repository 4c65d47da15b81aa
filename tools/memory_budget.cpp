#include "tools/memory_budget.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <tuple>

#include <sys/resource.h>
#include <unistd.h>

#include <fmt/format.h>

#include "models/conditional_vae_file.hpp"
#include "models/conv_nets.hpp"
#include "models/vae_file.hpp"
#include "tools/command.hpp"

namespace tools {
namespace {

// The physical memory, or the address space this process may take (ulimit -v) if less; 0 if unknown.
double memory_available() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  double memory = pages > 0 && page > 0 ? static_cast<double>(pages) * static_cast<double>(page) : 0;
  rlimit limit{};
  if (::getrlimit(RLIMIT_AS, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY)
    memory = memory > 0 ? std::min(memory, static_cast<double>(limit.rlim_cur)) : static_cast<double>(limit.rlim_cur);
  return memory;
}

// A model's parameters, with its classes' one-hot inputs if it is conditional (0 if past 2^64).
std::size_t parameters_of(const models::VaeConfig& config, std::size_t classes) {
  return classes ? models::parameter_count(config, classes) : models::parameter_count(config);
}

// The floats one example of a step keeps on the tape, values and gradients: the input, the
// decoder's output and the loss's terms (4 of the example's size), each layer's output
// (the conv layers' at 1/4 and 1/16 of the image, 32 and 64 channels), the latent draws.
// A lower bound: 180 KB for a 28 x 28 conv example (240 KB measured in use), 59 KB for an MLP
// of [1024, 1024] on 784 features (68 KB measured).
double activation_floats_per_example(const models::VaeConfig& config, std::size_t classes) {
  const double input = static_cast<double>(config.input_dim + classes), latent = static_cast<double>(config.latent);
  double layers = 0;
  if (config.arch == models::Arch::conv) {
    const double h = static_cast<double>(config.image.height), w = static_cast<double>(config.image.width);
    layers = 2 * (32 * std::ceil(h / 2) * std::ceil(w / 2) + 64 * std::ceil(h / 4) * std::ceil(w / 4) +
                  static_cast<double>(models::kConvHidden));
  } else {
    for (std::size_t width : config.hidden) layers += 2 * static_cast<double>(width);
  }
  return 2 * (4 * input + layers + 6 * latent);
}

}  // namespace

// The weights, their gradients and Adam's two moments take four floats a parameter before any
// activation; a model past the machine's memory (16 layers of 16,384: 4.3 billion parameters)
// would be killed by the kernel as it is initialised, so it is refused first.
void check_model_fits_in_memory(const models::VaeConfig& config, std::size_t classes) {
  const double memory = memory_available();
  if (memory <= 0) return;
  const std::size_t count = parameters_of(config, classes);
  const double needed = count == 0 ? std::numeric_limits<double>::infinity()  // (0: more than 2^64)
                                   : static_cast<double>(count) * 4 * sizeof(float);
  if (needed > memory)
    throw FlagError(fmt::format("the model ({}) has {} parameters, which need {:.1f} GB for weights, gradients and "
                                "Adam's moments, more than this machine's {:.1f} GB; choose a smaller --hidden or --latent",
                                models::describe_sizes(config), count == 0 ? "more than 2^64" : std::to_string(count),
                                needed / 1e9, memory / 1e9));
}

// Examples per evaluation batch: --eval-batch, whose default (500) the conv model replaces by
// the training batch. Its activations take about 200 KB per example, 50 times the MLP's, so
// 500 at once would add some 70 MB to the peak memory; at the training batch the tape's
// buffers, already that large, serve the evaluation too.
std::size_t evaluation_batch(const TrainOptions& o) {
  const bool given = std::find(o.given.begin(), o.given.end(), "eval-batch") != o.given.end();
  return o.arch == models::Arch::conv && !given ? std::min(o.eval_batch, o.batch) : o.eval_batch;
}

// A training step over a batch keeps every layer's activations and their gradients: a batch
// past the machine's memory (a conv model at --batch 60000 over Fashion-MNIST's 60,000
// examples, some 12 GB) would be killed by the kernel in its first step, so it is refused
// first, with the batch that would fit. An evaluation batch keeps the values alone.
void check_batches_fit_in_memory(const models::VaeConfig& config, std::size_t classes, const TrainOptions& o,
                                 const TrainingData& data) {
  const double memory = memory_available();
  if (memory <= 0) return;
  const double weights = static_cast<double>(parameters_of(config, classes)) * 4 * sizeof(float);
  const double per_example = activation_floats_per_example(config, classes) * sizeof(float);
  const std::size_t eval_batch = evaluation_batch(o);
  for (const auto& [flag, batch, examples, share] : {std::tuple{"--batch", o.batch, data.train.size(), 1.0},
                                                     std::tuple{"--eval-batch", eval_batch, data.eval.size(), 0.5}}) {
    const double rows = static_cast<double>(std::min(batch, examples));
    const double activations = share * per_example * rows;
    if (weights + activations <= memory) continue;
    const double fits = std::floor((memory - weights) / (share * per_example));
    // A resumed run keeps its checkpoint's --batch (a different one would change the run).
    const std::string advice =
        !o.resume.empty() && share == 1.0
            ? "the checkpoint's run trains at this batch: resume it where there is more memory"
            : fmt::format("choose a smaller {}{}", flag, fits >= 1 ? fmt::format(" (below {:.0f})", fits) : "");
    throw FlagError(fmt::format("{} {}: {} step over {:.0f} examples of this model ({}) needs at least {:.1f} GB for "
                                "its activations{}, more than the {:.1f} GB this machine (or ulimit -v) gives; {}",
                                flag, batch, share < 1 ? "an evaluation" : "a training", rows,
                                models::describe_sizes(config), (weights + activations) / 1e9,
                                share < 1 ? " and weights" : ", their gradients and the weights", memory / 1e9,
                                advice));
  }
}

}  // namespace tools
