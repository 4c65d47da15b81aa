#include "tools/config_file.hpp"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include <fmt/format.h>

#include "datasets/error.hpp"
#include "datasets/npy.hpp"  // read_file_bytes
#include "tools/config_toml.hpp"
#include "tools/options.hpp"

namespace fs = std::filesystem;

namespace tools {

const std::vector<std::string> kCommandNames = {"train",       "sample", "encode", "decode", "reconstruct",
                                                "interpolate", "traverse", "score", "evaluate", "info"};

namespace {

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t replaced = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
      diagonal = row[j];
      row[j] = std::min({replaced, row[j] + 1, row[j - 1] + 1});
    }
  }
  return row[b.size()];
}

// " (did you mean 'x'?)" for the nearest of `names` within two edits (one for a name of two
// or three letters, none for one letter: any flag is that near), else nothing.
std::string did_you_mean(const std::string& name, const std::vector<std::string>& names, const char* open,
                         const char* close) {
  const std::string* nearest = nullptr;
  std::size_t best = std::min<std::size_t>(2, name.size() / 2) + 1;
  for (const std::string& candidate : names)
    if (const std::size_t d = edit_distance(name, candidate); d < best) best = d, nearest = &candidate;
  return nearest ? fmt::format(" (did you mean {}{}{}?)", open, *nearest, close) : "";
}

// vae train's keys: the options table and --no-progress (add_training_flags).
std::vector<std::string> training_keys() {
  std::vector<std::string> keys = {"no-progress"};
  for (const OptionRow& row : train_option_table()) keys.push_back(row.name);
  return keys;
}

// The flags of `command` a file may set (not --config or --help): long ones, and those of one
// letter that have no long name (`vae sample -n`).
std::vector<std::string> keys_of(const CLI::App& command) {
  std::vector<std::string> keys;
  for (const CLI::Option* option : command.get_options()) {
    for (const std::string& name : option->get_lnames())
      if (name != "config" && name != "help") keys.push_back(name);
    if (option->get_lnames().empty())
      for (const std::string& name : option->get_snames())
        if (name != "h") keys.push_back(name);
  }
  return keys;
}

// How a key is written on a command line: --name, or -n for a key of one letter.
std::string flag_of(const std::string& key) { return (key.size() == 1 ? "-" : "--") + key; }

// The command a section configures: vae's subcommand of that name, or train_vae's own app.
const CLI::App* command_named(const CLI::App& root, const std::string& name) {
  const auto found = root.get_subcommands([&](const CLI::App* sub) { return sub->get_name() == name; });
  if (!found.empty()) return found.front();
  return root.get_subcommands([](const CLI::App*) { return true; }).empty() && name == "train" ? &root : nullptr;
}

// The sections a file may have: vae's subcommands, read from vae's app itself; train_vae,
// which does not link the other subcommands, knows them from kCommandNames.
std::vector<std::string> section_names(const CLI::App& root) {
  std::vector<std::string> names;
  for (const CLI::App* sub : root.get_subcommands([](const CLI::App*) { return true; }))
    names.push_back(sub->get_name());
  return names.empty() ? kCommandNames : names;
}

// Throws unless `item` is a key of the file's top or of a known section that its command reads.
void check_entry(const CLI::ConfigItem& item, const std::string& file, const CLI::App& root,
                 const std::string& section) {
  const std::string where = fmt::format("{}", fmt::join(item.parents, "."));
  const std::vector<std::string> sections = section_names(root);
  if (!where.empty() && (item.parents.size() > 1 || !contains(sections, where)))
    throw FlagError(fmt::format("--config: {}: [{}] is not a section of vae's{}; sections are commands: {}", file,
                                where, did_you_mean(where, sections, "[", "]"), fmt::join(sections, ", ")));
  if (item.name == "++" || item.name == "--") return;  // section markers
  if (where.empty()) {
    const std::vector<std::string> training = training_keys();
    if (contains(training, item.name)) return;
    const CLI::App* command = command_named(root, section);
    const bool its_own = command && section != "train" && contains(keys_of(*command), item.name);
    throw FlagError(fmt::format("--config: {}: unknown key '{}'{}; the top of a config file holds vae train's "
                                "options{}",
                                file, datasets::shown(item.name, 60), its_own ? "" : did_you_mean(item.name, training, "'", "'"),
                                its_own ? fmt::format(", {}'s own go in a [{}] section", section, section) : ""));
  }
  const CLI::App* command = command_named(root, where);
  if (!command) return;  // (train_vae does not know the other commands' flags)
  const std::vector<std::string> keys = keys_of(*command);
  if (!contains(keys, item.name))
    throw FlagError(fmt::format("--config: {}: [{}] unknown key '{}'{}; `vae {} --help` lists them", file, where,
                                datasets::shown(item.name, 60), did_you_mean(item.name, keys, "'", "'"), where));
}

// The file's text, checked to be text read_config_items reads: UTF-8 (its byte-order mark, which Windows
// editors write first, dropped), not UTF-16 or another binary file, whose bytes became keys.
std::string config_text(const std::string& file) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) throw FlagError(fmt::format("--config: {} is not a file", file));
  std::string text;
  try {
    const std::string bytes = datasets::read_file_bytes(file);
    text = datasets::without_utf8_mark(bytes, file);
  } catch (const datasets::DataError& e) {
    throw FlagError(fmt::format("--config: {}", e.what()));
  }
  std::size_t line = 1;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte == '\n') ++line;
    else if ((byte < 0x20 && byte != '\t' && byte != '\r') || byte == 0x7F)
      throw FlagError(fmt::format("--config: {}:{}: a control byte (0x{:02x}), which a TOML file does not hold", file,
                                  line, byte));
  }
  return text;
}

}  // namespace

void add_config_flag(CLI::App& app) {
  app.add_option("--config", "read options from a TOML file (flags on the command line override it)")
      ->type_name("FILE");
}

std::vector<std::string> with_config_file(std::vector<std::string> args, const std::string& section,
                                          const CLI::App& root) {
  std::string file;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--config" && i + 1 < args.size()) file = args[i + 1];
    else if (args[i].rfind("--config=", 0) == 0) file = args[i].substr(9);
  }
  if (file.empty()) return args;
  const std::vector<CLI::ConfigItem> items = read_config_items(config_text(file), file);
  auto given = [&](const std::string& name) {
    const std::string flag = flag_of(name);
    for (const std::string& a : args)
      if (a == flag || a.rfind(flag + (name.size() == 1 ? "" : "="), 0) == 0) return true;
    return false;
  };
  const CLI::App* command = command_named(root, section);
  std::vector<std::string> out = args;
  for (const CLI::ConfigItem& item : items) {
    check_entry(item, file, root, section);
    const bool top = item.parents.empty();
    if (!top && item.parents[0] != section) continue;  // another command's
    // A subcommand takes from the top (training options) only the keys naming its data.
    const bool its_data = contains(kDataOptionNames, item.name) && command && contains(keys_of(*command), item.name);
    if (top && section != "train" && !its_data) continue;
    if (item.name == "++" || item.name == "--" || given(item.name)) continue;  // section markers; overridden
    const std::string value = fmt::format("{}", fmt::join(item.inputs, ","));
    // "--data=" would take the next entry ("--epochs=1") for its value.
    if (value.empty())
      throw FlagError(fmt::format("--config: {}: '{}' is empty; leave it out for its default", file, item.name));
    // -n16: CLI11 reads a one-letter flag's value joined to it, as it reads --name=value.
    out.push_back(fmt::format("{}{}{}", flag_of(item.name), item.name.size() == 1 ? "" : "=", value));
  }
  return out;
}

}  // namespace tools
