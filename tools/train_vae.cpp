// train_vae: the same as `vae train` (kept for scripts that call it by this name).
//
// Exit codes: 0 done; 1 bad input (data, checkpoint, configuration); 2 bad flag;
// 3 training diverged (a non-finite loss; the last good checkpoint is kept).
#include <CLI/CLI.hpp>

#include "tools/command.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Trains a Variational Autoencoder (the same as `vae train`) and writes model.safetensors, "
               "checkpoint.safetensors, metrics.csv, results.json and PNG pictures to --out."};
  const auto train = tools::add_training_flags(app);
  if (const auto stop = tools::parse_command_line(app, {argv + 1, argv + argc}, "train", "train_vae", true))
    return *stop;
  return tools::run_reporting_errors("train_vae", train);
}
