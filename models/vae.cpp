#include "models/vae.hpp"
#include "models/mlp.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <numbers>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

#include "models/importance_weighted.hpp"
#include "nn/activation.hpp"

namespace models {

namespace {

// A learned variance can shrink without limit on features that never vary (the blank
// border of every Fashion-MNIST image), sending the likelihood to infinity. A soft floor,
// logvar = floor + softplus(raw - floor), keeps it above exp(-6) ~ 0.0025 while leaving
// the gradient smooth.
constexpr float kMinLogVariance = -6.0F;

}  // namespace

std::size_t parse_count(const std::string& text, const std::string& what) {
  std::size_t value = 0;
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value);
  if (text.empty() || error != std::errc() || stop != end)
    throw std::invalid_argument(fmt::format("{}: '{}' is not a whole number", what, text));
  return value;
}

std::vector<std::size_t> parse_widths(const std::string& text, const std::string& what) {
  std::vector<std::size_t> widths;
  if (text.empty() || text == "none") return widths;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    const std::size_t w = parse_count(item, what);
    if (w == 0) throw std::invalid_argument(fmt::format("{}: widths must be positive, got '{}'", what, text));
    widths.push_back(w);
  }
  if (text.back() == ',') throw std::invalid_argument(fmt::format("{}: '{}' ends with a comma", what, text));
  return widths;
}

std::string to_string(Decoder d) {
  switch (d) {
    case Decoder::bernoulli: return "bernoulli";
    case Decoder::gaussian: return "gaussian";
    case Decoder::gaussian_learned: return "gaussian-learned";
  }
  return "?";
}

Decoder parse_decoder(const std::string& name) {
  for (Decoder d : {Decoder::bernoulli, Decoder::gaussian, Decoder::gaussian_learned})
    if (to_string(d) == name) return d;
  throw std::invalid_argument(fmt::format(
      "unknown decoder '{}' (expected bernoulli, gaussian or gaussian-learned)", name));
}

std::string to_string(Arch a) { return a == Arch::conv ? "conv" : "mlp"; }

Arch parse_arch(const std::string& name) {
  for (Arch a : {Arch::mlp, Arch::conv})
    if (to_string(a) == name) return a;
  throw std::invalid_argument(fmt::format("unknown architecture '{}' (expected mlp or conv)", name));
}

void VaeConfig::validate() const {
  if (input_dim == 0) throw std::invalid_argument("VaeConfig: input_dim must be positive");
  if (latent == 0) throw std::invalid_argument("VaeConfig: latent must be positive");
  for (std::size_t h : hidden)
    if (h == 0) throw std::invalid_argument("VaeConfig: hidden widths must be positive");
  if (arch != Arch::conv) return;
  constexpr std::size_t kMaxSide = 65536;  // keeps every size product far from overflow
  const ImageSize& i = image;
  if (i.channels == 0 || i.channels > 4 || i.height == 0 || i.width == 0 || i.height % 4 || i.width % 4 ||
      i.height > kMaxSide || i.width > kMaxSide || latent > kMaxSide)
    throw std::invalid_argument(fmt::format(
        "the conv architecture needs images of 1 to 4 channels whose height and width divide by 4 (at most {}), "
        "got {} channels of {} x {}",
        kMaxSide, i.channels, i.height, i.width));
  if (i.channels * i.height * i.width != input_dim)
    throw std::invalid_argument(fmt::format("VaeConfig: {} channels of {} x {} are not the {} input values",
                                            i.channels, i.height, i.width, input_dim));
}

std::map<std::string, std::string> VaeConfig::to_metadata() const {
  std::map<std::string, std::string> m{{"model", "vae"},
                                       {"input_dim", std::to_string(input_dim)},
                                       {"hidden", fmt::format("{}", fmt::join(hidden, ","))},
                                       {"latent", std::to_string(latent)},
                                       {"decoder", to_string(decoder)}};
  if (arch == Arch::conv) {  // an MLP's metadata stays as it was before the conv model existed
    m["arch"] = to_string(arch);
    m["image"] = fmt::format("{},{},{}", image.channels, image.height, image.width);
  }
  return m;
}

VaeConfig VaeConfig::from_metadata(const std::map<std::string, std::string>& metadata) {
  auto get = [&](const char* key) {
    auto it = metadata.find(key);
    if (it == metadata.end())
      throw std::invalid_argument(fmt::format("checkpoint metadata lacks '{}'", key));
    return it->second;
  };
  VaeConfig c;
  c.input_dim = parse_count(get("input_dim"), "metadata 'input_dim'");
  c.hidden = parse_widths(get("hidden"), "metadata 'hidden'");
  c.latent = parse_count(get("latent"), "metadata 'latent'");
  c.decoder = parse_decoder(get("decoder"));
  if (metadata.count("arch")) c.arch = parse_arch(get("arch"));
  if (c.arch == Arch::conv) {
    const std::vector<std::size_t> chw = parse_widths(get("image"), "metadata 'image' (channels,height,width)");
    if (chw.size() != 3) throw std::invalid_argument("metadata 'image' must be channels,height,width");
    c.image = {chw[0], chw[1], chw[2]};
  }
  c.validate();
  return c;
}

// ---- construction ----

static const VaeConfig& validated(const VaeConfig& c) {
  c.validate();
  return c;
}

namespace {

nn::Sequential& make_encoder(nn::Module& vae, const VaeConfig& c, ag::Rng& rng) {
  if (c.arch == Arch::conv) return make_conv_encoder(vae, "encoder", c.image, rng);
  return make_mlp(vae, "encoder", c.input_dim, c.hidden, rng);
}

std::size_t encoder_width(const VaeConfig& c) {
  return c.arch == Arch::conv ? kConvHidden : last_width(c.hidden, c.input_dim);
}

nn::Sequential& make_decoder(nn::Module& vae, const VaeConfig& c, ag::Rng& rng) {
  if (c.arch == Arch::conv) return make_conv_decoder(vae, "decoder", c.latent, c.image, rng);
  return make_mlp(vae, "decoder", c.latent, reversed(c.hidden), rng);
}

/// The decoder's last layer: to logits or a mean (and, for gaussian-learned, a log-variance).
nn::Module& make_head(nn::Module& vae, const char* name, const VaeConfig& c, ag::Rng& rng) {
  if (c.arch == Arch::conv) return make_conv_head(vae, name, c.image, rng);
  return vae.register_module<nn::Linear>(name, c.hidden.empty() ? c.latent : c.hidden.front(), c.input_dim, rng);
}

}  // namespace

// Registration order fixes the state dict's order: encoder, heads, decoder, output.
Vae::Vae(const VaeConfig& config, ag::Rng& rng)
    : config_(validated(config)),
      encoder_(make_encoder(*this, config, rng)),
      mu_(register_module<nn::Linear>("mu", encoder_width(config), config.latent, rng)),
      logvar_(register_module<nn::Linear>("logvar", encoder_width(config), config.latent, rng)),
      decoder_(make_decoder(*this, config, rng)),
      out_(make_head(*this, "out", config, rng)) {
  if (config.decoder == Decoder::gaussian_learned) out_logvar_ = &make_head(*this, "out_logvar", config, rng);
}

std::string Vae::describe() const {
  if (config_.arch == Arch::conv)
    return fmt::format("Vae(arch=conv, image={}x{}x{}, latent={}, decoder={})", config_.image.channels,
                       config_.image.height, config_.image.width, config_.latent, models::to_string(config_.decoder));
  return fmt::format("Vae(input={}, hidden=[{}], latent={}, decoder={})", config_.input_dim,
                     fmt::join(config_.hidden, ", "), config_.latent, models::to_string(config_.decoder));
}

// ---- the model ----

Vae::Posterior Vae::encode(ag::Var x) {
  if (x.cols() != config_.input_dim)
    throw ag::ShapeError(fmt::format("Vae::encode: input {} has {} features, the model expects {}",
                                     ag::to_string(x.shape()), x.cols(), config_.input_dim));
  ag::Var h = encoder_(config_.arch == Arch::conv ? rows_to_images(x, config_.image) : x);
  return {mu_(h), logvar_(h)};
}

Vae::Likelihood Vae::decode(ag::Var z) {
  ag::Var h = decoder_(z);
  auto head = [&](nn::Module& m) { return config_.arch == Arch::conv ? images_to_rows(m(h), config_.image) : m(h); };
  Likelihood p{head(out_), {}};
  if (out_logvar_ != nullptr)
    p.logvar = floored_logvar(head(*out_logvar_));
  return p;
}

ag::Var reconstruction_loss(Decoder decoder, const Vae::Likelihood& p, ag::Var x, ag::Reduction reduction) {
  // With Reduction::none the elementwise loss is summed over features: one value per example.
  ag::Var loss;
  switch (decoder) {
    case Decoder::bernoulli: loss = ag::bce_with_logits(p.mean, x, reduction); break;
    case Decoder::gaussian: loss = ag::mse_loss(p.mean, x, reduction); break;
    case Decoder::gaussian_learned: loss = ag::gaussian_nll(x, p.mean, p.logvar, reduction); break;
  }
  return reduction == ag::Reduction::none ? ag::sum(loss, 1, /*keepdim=*/true) : loss;
}

ag::Var expected_x(Decoder decoder, const Vae::Likelihood& p) {
  return decoder == Decoder::bernoulli ? ag::sigmoid(p.mean) : p.mean;
}

ag::Var floored_logvar(ag::Var raw) { return ag::softplus(ag::add_scalar(raw, -kMinLogVariance)) + kMinLogVariance; }

ag::Var Vae::reconstruction_loss(const Likelihood& p, ag::Var x, ag::Reduction reduction) {
  return models::reconstruction_loss(config_.decoder, p, x, reduction);
}

ag::Var Vae::expected_x(const Likelihood& p) { return models::expected_x(config_.decoder, p); }

VaeLoss Vae::loss_at(ag::Var x, const Posterior& q, ag::Var z, float beta) {
  ag::Var reconstruction = reconstruction_loss(decode(z), x, ag::Reduction::batch_mean);
  ag::Var kl = ag::kl_to_standard_normal(q.mu, q.logvar, ag::Reduction::batch_mean);
  return {reconstruction + kl * beta, reconstruction, kl};
}

VaeLoss Vae::loss(ag::Var x, ag::Rng& rng, float beta) {
  Posterior q = encode(x);
  return loss_at(x, q, ag::reparameterize(q.mu, q.logvar, rng), beta);
}

VaeLoss Vae::loss(ag::Var x, const ag::Array& eps, float beta) {
  Posterior q = encode(x);
  return loss_at(x, q, ag::reparameterize(q.mu, q.logvar, eps), beta);
}

ag::Var Vae::reconstruct(ag::Var x) { return expected_x(decode(encode(x).mu)); }

ag::Var Vae::sample(ag::Tape& tape, std::size_t n, ag::Rng& rng) {
  ag::Array z({n, config_.latent});
  rng.fill_normal(z);
  return expected_x(decode(tape.constant(z)));
}

std::vector<double> Vae::importance_weighted_bound(ag::Tape& tape, const ag::Array& x,
                                                   std::size_t k, ag::Rng& rng) {
  ag::NoGradGuard no_grad(tape);
  tape.reset();
  const Posterior q = encode(tape.constant(x));
  const ag::Array mu = q.mu.value(), logvar = q.logvar.value();  // kept across resets
  return models::importance_weighted_bound(tape, mu, logvar, k, rng, [&](ag::Var z) {
    return log_likelihoods(reconstruction_loss(decode(z), tape.constant(x), ag::Reduction::none).value(), config_);
  });
}

}  // namespace models
