#include "nn/checkpoint.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace nn {

std::vector<TensorEntry> module_entries(Module& module) {
  std::vector<TensorEntry> entries;
  for (const StateEntry& e : module.state_dict()) entries.emplace_back(e.name, e.shape, *e.array);
  return entries;
}

void save_module(const std::filesystem::path& path, Module& module, const Metadata& metadata,
                 std::span<const TensorEntry> extra) {
  std::vector<TensorEntry> entries = module_entries(module);
  entries.insert(entries.end(), extra.begin(), extra.end());
  save_safetensors(path, entries, metadata);
}

void check_finite(const SafetensorsFile& file, const std::string& name, std::span<const float> values) {
  const auto bad = std::find_if(values.begin(), values.end(), [](float v) { return !std::isfinite(v); });
  if (bad != values.end())
    throw SafetensorsError(fmt::format("{}: tensor \"{}\" holds a non-finite value ({}) at index {}", file.source(),
                                       name, *bad, bad - values.begin()));
}

void check_all_finite(const SafetensorsFile& file) {
  for (const std::string& name : file.names()) check_finite(file, name, file.get(name).to_floats());
}

void load_module(const SafetensorsFile& file, Module& module,
                 const std::vector<std::string>& ignore_prefixes) {
  TensorMap source;
  for (const std::string& name : file.names()) {
    bool ignored = false;
    for (const std::string& prefix : ignore_prefixes) ignored = ignored || name.rfind(prefix, 0) == 0;
    if (ignored) continue;
    TensorView view = file.get(name);
    std::vector<float> values = view.to_floats();
    // The caller is about to use the values: a NaN weight would give NaN samples without a
    // word, or a resumed run a "diverged" blamed on the learning rate.
    check_finite(file, name, values);
    source.emplace(name, Tensor{view.shape, std::move(values)});
  }
  try {
    module.load_state_dict(source, /*strict=*/true);
  } catch (const StateDictError& e) {
    throw StateDictError(e.tensor(), file.source() + ": " + e.what());
  }
}

}  // namespace nn
