#include "nn/training_state.hpp"

#include <cerrno>
#include <cstdlib>
#include <vector>

#include <fmt/format.h>

#include "nn/checkpoint.hpp"

namespace nn {
namespace {

constexpr std::string_view kOptimizer = "optimizer.";
constexpr std::string_view kRng = "rng.";
constexpr std::string_view kText = "state.";

bool starts_with(const std::string& s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }

// Hex floats ("0x1.0624dd2f1a9fcp-10") round-trip every double exactly.
double parse_exact(const std::string& text, const std::string& key, const std::string& source) {
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || errno != 0)
    throw SafetensorsError(fmt::format("{}: metadata '{}' is not a number: '{}'", source, key, text));
  return v;
}

/// The tensor at its stored shape (a convolution's moments are [out, in, kh, kw], its bias's [out]).
ag::Array exact_array(const TensorView& v) {
  if (v.shape.empty() || v.shape.size() > ag::kMaxRank)
    throw SafetensorsError(fmt::format("tensor {}: an optimizer state of rank {} (1 to {} expected)", v.name,
                                       v.shape.size(), ag::kMaxRank));
  ag::Array a = ag::Array::from_shape(ag::Shape(v.shape.begin(), v.shape.end()));
  v.copy_to(std::span<float>(a.data(), a.size()));
  return a;
}

}  // namespace

void save_training_state(const std::filesystem::path& path, const TrainingState& state, Metadata metadata) {
  for (const auto& [key, value] : metadata)
    if (starts_with(key, kOptimizer) || starts_with(key, kRng) || starts_with(key, kText))
      throw SafetensorsError(fmt::format("save_training_state: metadata key '{}' uses a reserved prefix", key));
  const optim::OptimizerState optimizer = state.optimizer.state();
  for (const auto& [key, value] : optimizer.scalars) metadata[std::string(kOptimizer) + key] = fmt::format("{:a}", value);
  for (const auto& [name, rng] : state.generators) metadata[std::string(kRng) + name] = rng->state();
  for (const auto& [name, text] : state.text) metadata[std::string(kText) + name] = text;
  std::vector<TensorEntry> buffers;
  for (const auto& [key, array] : optimizer.arrays)
    buffers.emplace_back(std::string(kOptimizer) + key, std::vector<std::size_t>(array.shape().begin(), array.shape().end()),
                         array);  // of any rank: a convolution's moments are [out, in, kh, kw]
  save_module(path, state.module, metadata, buffers);
}

void restore_training_state(const SafetensorsFile& file, TrainingState& state) {
  optim::OptimizerState optimizer;
  for (const auto& [key, value] : file.metadata())
    if (starts_with(key, kOptimizer))
      optimizer.scalars[key.substr(kOptimizer.size())] = parse_exact(value, key, file.source());
  for (const std::string& name : file.names())
    if (starts_with(name, kOptimizer)) optimizer.arrays[name.substr(kOptimizer.size())] = exact_array(file.get(name));
  // Generators first (parsing only touches a copy), then the module and the optimizer,
  // each of which checks everything before it changes anything.
  std::map<std::string, ag::Rng> generators;
  for (const auto& [name, rng] : state.generators) {
    ag::Rng copy = *rng;
    try {
      copy.set_state(file.metadata_value(std::string(kRng) + name));
    } catch (const std::invalid_argument& e) {
      throw SafetensorsError(fmt::format("{}: generator '{}': {}", file.source(), name, e.what()));
    }
    generators.emplace(name, copy);
  }
  load_module(file, state.module, {std::string(kOptimizer)});
  try {
    state.optimizer.load_state(optimizer);
  } catch (const optim::StateError& e) {
    throw optim::StateError(file.source() + ": " + e.what());
  }
  for (auto& [name, rng] : state.generators) *rng = generators.at(name);
  state.text.clear();
  for (const auto& [key, value] : file.metadata())
    if (starts_with(key, kText)) state.text[key.substr(kText.size())] = value;
}

bool holds_training_state(const SafetensorsFile& file) {
  for (const auto& [key, value] : file.metadata())
    if (starts_with(key, kOptimizer)) return true;
  return false;
}

}  // namespace nn
