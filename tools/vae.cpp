// vae: train a Variational Autoencoder and use it. `vae --help` lists the subcommands,
// `vae SUB --help` their flags; each subcommand is one file, tools/vae_<name>.cpp.
//
// Exit codes: 0 done; 1 bad input (data, checkpoint); 2 bad flag; 3 training diverged.
#include <algorithm>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "tools/command.hpp"

int main(int argc, char** argv) {
  CLI::App app{"vae: train a Variational Autoencoder, then sample, encode, decode, reconstruct (denoise), "
               "interpolate, traverse, score (anomaly detection), evaluate and inspect it."};
  app.require_subcommand(1);
  const std::vector<tools::Command> commands = {
      tools::add_train_command(app),       tools::add_sample_command(app),      tools::add_encode_command(app),
      tools::add_decode_command(app),      tools::add_reconstruct_command(app), tools::add_interpolate_command(app),
      tools::add_traverse_command(app),    tools::add_score_command(app),       tools::add_evaluate_command(app),
      tools::add_info_command(app)};
  const std::vector<std::string> args(argv + 1, argv + argc);
  // CLI11 answered `vae smaple ...` with "A subcommand is required", not naming the word.
  if (!args.empty() && !args.front().empty() && args.front()[0] != '-' &&
      std::none_of(commands.begin(), commands.end(),
                   [&](const tools::Command& c) { return c.app->get_name() == args.front(); })) {
    std::vector<std::string> names;
    for (const tools::Command& c : commands) names.push_back(c.app->get_name());
    fmt::print(stderr, "vae: error: '{}' is not a subcommand; they are {} (vae --help)\n", args.front(),
               fmt::join(names, ", "));
    return 2;
  }
  const bool training = !args.empty() && args.front() == "train";  // under mpirun: errors printed once
  if (const auto stop = tools::parse_command_line(app, args, args.empty() ? "" : args.front(), "vae", training))
    return *stop;
  for (const tools::Command& c : commands)
    if (c.app->parsed()) return tools::run_reporting_errors(("vae " + c.app->get_name()).c_str(), c.run);
  return 2;
}
