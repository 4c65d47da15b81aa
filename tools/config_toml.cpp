#include "tools/config_toml.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "datasets/error.hpp"  // shown
#include "tools/options.hpp"   // FlagError

namespace tools {
namespace {

class Entries {
 public:
  explicit Entries(const std::string& file) : file_(file) {}

  // The key = value entries under `table`, whose keys sit under `parents`: a section marker for
  // each [section] (CLI11's "++", so that an empty section is still checked), then its keys.
  void add(const toml::table& table, const std::vector<std::string>& parents) {
    for (const auto& [key, node] : table) {
      std::vector<std::string> path = parents;
      path.emplace_back(key.str());
      if (const toml::table* sub = node.as_table()) {
        if (sub->is_inline()) fail(node, "an inline table ({...}), which no flag takes");
        // ([a.b] is named and refused by the caller, who knows the commands; deeper is not read)
        if (path.size() > 2) fail(node, "a section three or more levels deep, which no command has");
        items_.push_back(CLI::ConfigItem{path, "++", {}});
        add(*sub, path);
        continue;
      }
      CLI::ConfigItem item{parents, std::string(key.str()), {}};
      if (const toml::array* array = node.as_array()) {
        for (const toml::node& element : *array) item.inputs.push_back(scalar(element));
      } else {
        item.inputs.push_back(scalar(node));
      }
      items_.push_back(std::move(item));
    }
  }

  std::vector<CLI::ConfigItem> take() { return std::move(items_); }

 private:
  [[noreturn]] void fail(const toml::node& node, const std::string& what) const {
    throw FlagError(fmt::format("--config: {}:{}: {}", file_, node.source().begin.line, what));
  }

  // A value as a flag takes it: a string as it is, a number or a truth value as text.
  std::string scalar(const toml::node& node) const {
    if (const auto* s = node.as_string()) return s->get();
    if (const auto* i = node.as_integer()) return fmt::format("{}", i->get());
    if (const auto* f = node.as_floating_point()) return fmt::format("{}", f->get());
    if (const auto* b = node.as_boolean()) return b->get() ? "true" : "false";
    if (node.is_array()) fail(node, "an array inside an array, which no flag takes");
    if (node.is_table()) fail(node, "a table inside an array (an inline table or [[...]]), which no flag takes");
    fail(node, "a date or time, which no flag takes");
  }

  const std::string& file_;
  std::vector<CLI::ConfigItem> items_;
};

}  // namespace

std::vector<CLI::ConfigItem> read_config_items(std::string_view text, const std::string& file) {
  toml::table root;
  try {
    root = toml::parse(text, file);
  } catch (const toml::parse_error& e) {
    throw FlagError(fmt::format("--config: {}:{}: {}", file, e.source().begin.line, e.description()));
  }
  Entries entries(file);
  entries.add(root, {});
  return entries.take();
}

}  // namespace tools
