// libFuzzer target: a --config file (TOML, read by tools::read_config_items) on any text, then
// every entry through the options table's validation, as `vae train --config FILE` does. A bad
// file or value must end in tools::FlagError; anything else is a finding.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_input.hpp"
#include "tools/command.hpp"
#include "tools/options.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = fuzz::write_input("config.toml", data, size).string();
  try {
    CLI::App app;
    tools::add_training_flags(app);
    const std::vector<std::string> args = tools::with_config_file({"--config", path}, "train", app);
    tools::TrainOptions options;
    for (const std::string& arg : args) {
      if (arg.rfind("--", 0) != 0) continue;
      const std::size_t eq = arg.find('=');
      if (eq == std::string::npos) continue;
      const std::string name = arg.substr(2, eq - 2);
      bool known = false;
      for (const tools::OptionRow& row : tools::train_option_table()) known = known || row.name == name;
      if (known) tools::set_option(options, name, arg.substr(eq + 1));
    }
  } catch (const tools::FlagError&) {
  }
  return 0;
}
