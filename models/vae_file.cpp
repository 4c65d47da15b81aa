#include "models/vae_file.hpp"

#include <limits>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "nn/checkpoint.hpp"

namespace models {
namespace {

// Sizes multiplied and added with an overflow check: metadata may claim anything.
struct Count {
  std::size_t value = 0;
  bool overflow = false;
  void add_linear(std::size_t in, std::size_t out) {  // weight [out, in] and bias [out]
    constexpr std::size_t kMax = std::numeric_limits<std::size_t>::max();
    if (in == kMax || out > kMax / (in + 1)) overflow = true;
    const std::size_t n = overflow ? 0 : out * (in + 1);
    if (n > kMax - value) overflow = true;
    value += overflow ? 0 : n;
  }
};

}  // namespace

std::size_t parameter_count(const VaeConfig& c) {
  if (c.arch == Arch::conv) return conv_parameter_count(c.image, c.latent, c.decoder == Decoder::gaussian_learned ? 2 : 1);
  Count total;
  std::size_t in = c.input_dim;
  for (std::size_t w : c.hidden) {
    total.add_linear(in, w);
    in = w;
  }
  total.add_linear(in, c.latent);  // mu
  total.add_linear(in, c.latent);  // logvar
  std::size_t back = c.latent;
  for (auto it = c.hidden.rbegin(); it != c.hidden.rend(); ++it) {
    total.add_linear(back, *it);
    back = *it;
  }
  total.add_linear(back, c.input_dim);
  if (c.decoder == Decoder::gaussian_learned) total.add_linear(back, c.input_dim);
  return total.overflow ? 0 : total.value;
}

std::string describe_sizes(const VaeConfig& c) {
  const std::string sizes =
      c.arch == Arch::conv ? fmt::format("conv, image {}x{}x{}", c.image.channels, c.image.height, c.image.width)
                           : fmt::format("input {}, hidden [{}]", c.input_dim, fmt::join(c.hidden, ","));
  return fmt::format("{}, latent {}, decoder {}", sizes, c.latent, to_string(c.decoder));
}

void check_stored_count(const nn::SafetensorsFile& file, std::size_t needed, const std::string& model) {
  std::size_t stored = 0;
  for (const std::string& name : file.names())
    if (name.rfind("optimizer.", 0) != 0) stored += file.get(name).count();
  if (needed != stored)
    throw nn::SafetensorsError(fmt::format("{}: {} needs {} parameters, but the file holds {} model values",
                                           file.source(), model,
                                           needed == 0 ? std::string("more than 2^64") : std::to_string(needed),
                                           stored));
}

void check_parameter_count(const VaeConfig& config, const nn::SafetensorsFile& file) {
  check_stored_count(file, parameter_count(config),
                     fmt::format("the configuration in its metadata ({})", describe_sizes(config)));
}

VaeConfig config_from_file(const nn::SafetensorsFile& file) {
  VaeConfig config;
  try {
    config = VaeConfig::from_metadata(file.metadata());
  } catch (const std::invalid_argument& e) {
    throw nn::SafetensorsError(fmt::format("{}: {}", file.source(), e.what()));
  }
  check_parameter_count(config, file);
  return config;
}

std::unique_ptr<Vae> load_vae(const nn::SafetensorsFile& file) {
  const VaeConfig config = config_from_file(file);
  ag::Rng unused(0);
  auto vae = std::make_unique<Vae>(config, unused);
  nn::load_module(file, *vae, {"optimizer."});
  return vae;
}

}  // namespace models
