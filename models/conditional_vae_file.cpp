#include "models/conditional_vae_file.hpp"

#include <limits>
#include <stdexcept>

#include <fmt/format.h>

#include "models/vae_file.hpp"
#include "nn/checkpoint.hpp"

namespace models {

// The plain VAE's count plus the class's one-hot columns: C more inputs to the encoder's
// first layer (width hidden.front()) and to the decoder's first layer (which mirrors the
// encoder: width hidden.back()); without hidden layers, to the two heads and the output
// layers. The conv networks: see conv_parameter_count.
std::size_t parameter_count(const VaeConfig& c, std::size_t num_classes) {
  const std::size_t heads = c.decoder == Decoder::gaussian_learned ? 2 : 1;  // out (and out_logvar)
  if (c.arch == Arch::conv) return conv_parameter_count(c.image, c.latent, heads, num_classes);
  const std::size_t plain = parameter_count(c);
  constexpr std::size_t kMax = std::numeric_limits<std::size_t>::max();
  const bool deep = !c.hidden.empty();
  const std::size_t encoder_out = deep ? c.hidden.front() : 2 * c.latent;  // mu and logvar
  const std::size_t decoder_out = deep ? c.hidden.back() : heads * c.input_dim;
  if (plain == 0 || encoder_out > kMax / 2 || decoder_out > kMax - encoder_out) return 0;
  const std::size_t per_class = encoder_out + decoder_out;
  if (num_classes != 0 && per_class > kMax / num_classes) return 0;
  const std::size_t extra = per_class * num_classes;
  return extra > kMax - plain ? 0 : plain + extra;
}

bool is_conditional(const nn::SafetensorsFile& file) {
  const nn::Metadata& m = file.metadata();
  auto it = m.find("model");
  return it != m.end() && it->second == kConditionalVaeModel;
}

nn::Metadata conditional_metadata(const ConditionalVae& cvae) {
  nn::Metadata m = cvae.config().to_metadata();
  m["model"] = kConditionalVaeModel;
  m["classes"] = std::to_string(cvae.num_classes());
  return m;
}

void check_parameter_count(const VaeConfig& config, std::size_t num_classes, const nn::SafetensorsFile& file) {
  check_stored_count(file, parameter_count(config, num_classes),
                     fmt::format("the conditional model in its metadata ({}, {} classes)", describe_sizes(config),
                                 num_classes));
}

std::unique_ptr<ConditionalVae> load_conditional_vae(const nn::SafetensorsFile& file) {
  VaeConfig config;
  std::size_t classes = 0;
  try {
    config = VaeConfig::from_metadata(file.metadata());
    const auto it = file.metadata().find("classes");
    if (it == file.metadata().end()) throw std::invalid_argument("checkpoint metadata lacks 'classes'");
    classes = parse_count(it->second, "metadata 'classes'");
  } catch (const std::invalid_argument& e) {
    throw nn::SafetensorsError(fmt::format("{}: {}", file.source(), e.what()));
  }
  check_parameter_count(config, classes, file);
  ag::Rng unused(0);
  auto cvae = std::make_unique<ConditionalVae>(config, classes, unused);
  nn::load_module(file, *cvae, {"optimizer."});
  return cvae;
}

}  // namespace models
