// --config FILE: the TOML file whose entries become flags, and the check that every entry in
// it is one the command reads, so that a misspelled key or [section] is an error, not silence.
//
// The top of a file holds vae train's options (the options table, --no-progress): configs/
// are training configurations. A subcommand given such a file takes from its top only the
// data keys (data, limit, label-column, channels, label-names), which mean the same to it,
// and leaves the training ones; its own keys go in its [SUB] section ([sample], [encode]...).
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace tools {

/// The names of vae's subcommands, which are the sections a config file may have, for
/// train_vae (which does not link them); vae reads them from its own app. A test
/// (test_vae_tool.py, Configs) checks that train_vae accepts a section for every subcommand
/// `vae --help` lists, so a new subcommand missing here fails it.
extern const std::vector<std::string> kCommandNames;

/// --config FILE (TOML; flags given on the command line override it). Documents the flag;
/// with_config_file() does the reading, the same way for `vae SUB` and train_vae.
void add_config_flag(CLI::App& app);

/// The arguments (without the program name) with the entries of the `--config FILE` among
/// them added as "--key=value" flags, except those the command line already gives, which
/// override the file; TOML arrays become comma-separated lists. `section` is the command
/// being run ("train", "sample"...); `root` is vae's app (its subcommands give each
/// section's keys) or, for train_vae, the training command itself. Throws FlagError naming
/// the file if it cannot be read, or holds a section or key no command reads.
std::vector<std::string> with_config_file(std::vector<std::string> args, const std::string& section,
                                          const CLI::App& root);

}  // namespace tools
