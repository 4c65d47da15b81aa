// train_vae: the same as `vae train` (kept for scripts that call it by this name).
//
// Exit codes: 0 done; 1 bad input (data, checkpoint, configuration); 2 bad flag;
// 3 training diverged (a non-finite loss; the last good checkpoint is kept).
#include <algorithm>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "tools/command.hpp"
#include "tools/vae_training.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Trains a Variational Autoencoder (the same as `vae train`) and writes model.safetensors, "
               "checkpoint.safetensors, metrics.csv, results.json and PNG pictures to --out."};
  const auto train = tools::add_training_flags(app);
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    args = tools::with_config_file(args, "train");
  } catch (const tools::FlagError& e) {
    return tools::report_before_training(2, fmt::format("train_vae: error: {}\n", e.what()));
  }
  std::reverse(args.begin(), args.end());  // CLI11 takes the arguments last first
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return tools::report_parse_error(app, e, true);
  }
  return tools::run_reporting_errors("train_vae", train);
}
