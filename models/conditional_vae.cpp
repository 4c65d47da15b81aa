#include "models/conditional_vae.hpp"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "models/importance_weighted.hpp"
#include "models/mlp.hpp"

namespace models {

void class_indices(std::span<const std::int32_t> labels, ag::Array& out) {
  if (out.dimension() != 1 || out.size() != labels.size()) out.resize({labels.size()});
  std::transform(labels.begin(), labels.end(), out.begin(), [](std::int32_t v) { return static_cast<float>(v); });
}

static const VaeConfig& checked(const VaeConfig& c, std::size_t num_classes) {
  c.validate();
  if (num_classes == 0) throw std::invalid_argument("ConditionalVae: there must be at least one class");
  return c;
}

namespace {

// The networks of a Vae of this config, each with the classes' one-hot inputs added.
nn::Sequential& make_encoder(nn::Module& cvae, const VaeConfig& c, std::size_t classes, ag::Rng& rng) {
  if (c.arch == Arch::conv)
    return make_conv_encoder(cvae, "encoder", {c.image.channels + classes, c.image.height, c.image.width}, rng);
  return make_mlp(cvae, "encoder", c.input_dim + classes, c.hidden, rng);
}

std::size_t encoder_width(const VaeConfig& c, std::size_t classes) {
  return c.arch == Arch::conv ? kConvHidden : last_width(c.hidden, c.input_dim + classes);
}

nn::Sequential& make_decoder(nn::Module& cvae, const VaeConfig& c, std::size_t classes, ag::Rng& rng) {
  if (c.arch == Arch::conv) return make_conv_decoder(cvae, "decoder", c.latent + classes, c.image, rng);
  return make_mlp(cvae, "decoder", c.latent + classes, reversed(c.hidden), rng);
}

nn::Module& make_head(nn::Module& cvae, const char* name, const VaeConfig& c, std::size_t classes, ag::Rng& rng) {
  if (c.arch == Arch::conv) return make_conv_head(cvae, name, c.image, rng);
  return cvae.register_module<nn::Linear>(name, c.hidden.empty() ? c.latent + classes : c.hidden.front(),
                                          c.input_dim, rng);
}

}  // namespace

ConditionalVae::ConditionalVae(const VaeConfig& config, std::size_t num_classes, ag::Rng& rng)
    : config_(checked(config, num_classes)),
      num_classes_(num_classes),
      encoder_(make_encoder(*this, config, num_classes, rng)),
      mu_(register_module<nn::Linear>("mu", encoder_width(config, num_classes), config.latent, rng)),
      logvar_(register_module<nn::Linear>("logvar", encoder_width(config, num_classes), config.latent, rng)),
      decoder_(make_decoder(*this, config, num_classes, rng)),
      out_(make_head(*this, "out", config, num_classes, rng)) {
  if (config.decoder == Decoder::gaussian_learned) out_logvar_ = &make_head(*this, "out_logvar", config, num_classes, rng);
}

std::string ConditionalVae::describe() const {
  if (config_.arch == Arch::conv)
    return fmt::format("ConditionalVae(arch=conv, image={}x{}x{}, classes={}, latent={}, decoder={})",
                       config_.image.channels, config_.image.height, config_.image.width, num_classes_,
                       config_.latent, models::to_string(config_.decoder));
  return fmt::format("ConditionalVae(input={}, classes={}, hidden=[{}], latent={}, decoder={})", config_.input_dim,
                     num_classes_, fmt::join(config_.hidden, ", "), config_.latent, models::to_string(config_.decoder));
}

ag::Var ConditionalVae::with_class(ag::Var x, ag::Var labels) {
  if (labels.dim() != 1 || labels.numel() != x.rows())
    throw ag::ShapeError(fmt::format("ConditionalVae: labels {} must be [B] for the batch {}",
                                     ag::to_string(labels.shape()), ag::to_string(x.shape())));
  ag::Var classes = ag::one_hot(labels, num_classes_);  // [B, K]
  if (x.dim() == 2) return ag::concat(x, classes);
  const ag::Shape& s = x.shape();  // images [B, C, H, W]: K planes, each 0 or 1 everywhere
  ag::Var planes = ag::broadcast_to(ag::reshape(classes, {s[0], num_classes_, 1, 1}), {s[0], num_classes_, s[2], s[3]});
  return ag::concat({x, planes}, 1);
}

Vae::Posterior ConditionalVae::encode(ag::Var x, ag::Var labels) {
  if (x.dim() != 2 || x.cols() != config_.input_dim)
    throw ag::ShapeError(fmt::format("ConditionalVae::encode: input {} must be [B, {}]", ag::to_string(x.shape()),
                                     config_.input_dim));
  ag::Var h = encoder_(with_class(config_.arch == Arch::conv ? rows_to_images(x, config_.image) : x, labels));
  return {mu_(h), logvar_(h)};
}

Vae::Likelihood ConditionalVae::decode(ag::Var z, ag::Var labels) {
  ag::Var h = decoder_(with_class(z, labels));
  auto head = [&](nn::Module& m) { return config_.arch == Arch::conv ? images_to_rows(m(h), config_.image) : m(h); };
  Vae::Likelihood p{head(out_), {}};
  if (out_logvar_ != nullptr) p.logvar = floored_logvar(head(*out_logvar_));
  return p;
}

ag::Var ConditionalVae::reconstruction_loss(const Vae::Likelihood& p, ag::Var x, ag::Reduction reduction) {
  return models::reconstruction_loss(config_.decoder, p, x, reduction);
}

ag::Var ConditionalVae::expected_x(const Vae::Likelihood& p) { return models::expected_x(config_.decoder, p); }

VaeLoss ConditionalVae::loss_at(ag::Var x, ag::Var labels, const Vae::Posterior& q, ag::Var z, float beta) {
  ag::Var reconstruction = reconstruction_loss(decode(z, labels), x, ag::Reduction::batch_mean);
  ag::Var kl = ag::kl_to_standard_normal(q.mu, q.logvar, ag::Reduction::batch_mean);
  return {reconstruction + kl * beta, reconstruction, kl};
}

VaeLoss ConditionalVae::loss(ag::Var x, ag::Var labels, ag::Rng& rng, float beta) {
  Vae::Posterior q = encode(x, labels);
  return loss_at(x, labels, q, ag::reparameterize(q.mu, q.logvar, rng), beta);
}

VaeLoss ConditionalVae::loss(ag::Var x, ag::Var labels, const ag::Array& eps, float beta) {
  Vae::Posterior q = encode(x, labels);
  return loss_at(x, labels, q, ag::reparameterize(q.mu, q.logvar, eps), beta);
}

ag::Var ConditionalVae::reconstruct(ag::Var x, ag::Var labels) {
  return expected_x(decode(encode(x, labels).mu, labels));
}

ag::Var ConditionalVae::sample(ag::Tape& tape, const ag::Array& labels, ag::Rng& rng) {
  ag::Array z({labels.size(), config_.latent});
  rng.fill_normal(z);
  return expected_x(decode(tape.constant(z), tape.constant(labels)));
}

std::vector<double> ConditionalVae::importance_weighted_bound(ag::Tape& tape, const ag::Array& x,
                                                              const ag::Array& labels, std::size_t k, ag::Rng& rng) {
  ag::NoGradGuard no_grad(tape);
  tape.reset();
  const Vae::Posterior q = encode(tape.constant(x), tape.constant(labels));
  const ag::Array mu = q.mu.value(), logvar = q.logvar.value();  // kept across resets
  return models::importance_weighted_bound(tape, mu, logvar, k, rng, [&](ag::Var z) {
    ag::Var y = tape.constant(labels);
    return log_likelihoods(reconstruction_loss(decode(z, y), tape.constant(x), ag::Reduction::none).value(), config_);
  });
}

}  // namespace models
