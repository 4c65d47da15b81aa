// vae train: trains a VAE (every flag is a row of tools/options.cpp's table).
#include <memory>

#include "tools/command.hpp"
#include "tools/vae_training.hpp"

namespace tools {

std::function<void()> add_training_flags(CLI::App& app) {
  auto flags = std::make_shared<TableFlags>(app, std::vector<std::string>{});
  auto no_progress = std::make_shared<bool>(false);
  app.add_flag("--no-progress", *no_progress, "no progress bar");
  add_config_flag(app);
  return [flags, no_progress] {
    train_vae([&] {  // read inside train_vae: under mpirun a bad value is reported once
      TrainOptions o;
      flags->apply(o);
      o.progress = !*no_progress;
      return o;
    });
  };
}

Command add_train_command(CLI::App& vae) {
  CLI::App* app = vae.add_subcommand("train", "train a VAE; writes model.safetensors, checkpoint.safetensors, "
                                              "metrics.csv, results.json and pictures to --out");
  return {app, add_training_flags(*app)};
}

}  // namespace tools
