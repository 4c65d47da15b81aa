// The Variational Autoencoder (Kingma & Welling 2014), built only from the public
// framework: nn::Linear / nn::Sequential (or the convolutional networks of conv_nets.hpp) for
// the networks, ag ops for the loss.
//
//   encoder  x [B, D] -> h -> mu [B, Z], logvar [B, Z]       (MLP or convolutions, two linear heads)
//   sample   z = mu + exp(logvar / 2) * eps                   (ag::reparameterize)
//   decoder  z -> h' -> logits or mean [B, D] (+ logvar [B, D] for the learned-variance decoder)
//   loss     per example: reconstruction + beta * KL(q(z|x) || N(0, I)), in nats, averaged over the batch
//
// Parameter names follow a PyTorch module with the same attributes ("encoder.0.weight",
// "mu.weight", "decoder.0.weight", "out.weight", ...; see README), so checkpoints load there.
//
//   models::VaeConfig config;            // 784-400-20, Bernoulli: the pytorch/examples VAE
//   ag::Rng rng(1);
//   models::Vae vae(config, rng);
//   ag::Tape tape;
//   models::VaeLoss l = vae.loss(tape.constant(batch), rng);
//   tape.backward(l.loss);
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "autograd/autograd.hpp"
#include "models/conv_nets.hpp"
#include "nn/linear.hpp"
#include "nn/module.hpp"
#include "nn/sequential.hpp"

namespace models {

/// The observation model p(x | z).
enum class Decoder {
  /// Bernoulli with logits: reconstruction = BCE from logits, summed over features.
  /// The data must lie in [0, 1] (gray values are the usual "continuous Bernoulli-free" practice).
  bernoulli,
  /// Gaussian with fixed variance 1/2 around a linear mean: reconstruction = sum of squared
  /// errors, which is -log N(x; mean, 1/2) minus the constant (D/2) log(pi) per example.
  gaussian,
  /// Gaussian with a learned per-feature log-variance head: reconstruction = the exact
  /// Gaussian NLL. The log-variance is kept above kMinLogVariance (see vae.cpp).
  gaussian_learned,
};

/// The networks around the latent code.
enum class Arch {
  /// Linear + ReLU layers of the `hidden` widths, the decoder mirroring the encoder.
  mlp,
  /// The convolutional encoder and decoder of models/conv_nets.hpp, for images.
  conv,
};

/// "mlp", "conv"
std::string to_string(Arch a);
/// The inverse of to_string; throws std::invalid_argument naming the accepted values.
Arch parse_arch(const std::string& name);

/// "400" -> 400; throws std::invalid_argument naming `what` unless `text` is a whole number.
std::size_t parse_count(const std::string& text, const std::string& what);
/// "128,64" -> {128, 64}; "none" or "" -> {} (no hidden layer); throws std::invalid_argument
/// naming `what` for anything else (a zero, a sign, a stray character).
std::vector<std::size_t> parse_widths(const std::string& text, const std::string& what);

/// "bernoulli", "gaussian", "gaussian-learned"
std::string to_string(Decoder d);
/// The inverse of to_string; throws std::invalid_argument naming the accepted values.
Decoder parse_decoder(const std::string& name);

struct VaeConfig {
  std::size_t input_dim = 784;
  std::vector<std::size_t> hidden = {400};  // encoder widths; the decoder mirrors them
  std::size_t latent = 20;
  Decoder decoder = Decoder::bernoulli;
  Arch arch = Arch::mlp;
  ImageSize image = {};  // conv: the examples' channels, height and width (hidden is not used)

  /// Checks the sizes; throws std::invalid_argument saying which is wrong.
  void validate() const;
  /// As strings, for a checkpoint's metadata, and back (throws std::invalid_argument).
  std::map<std::string, std::string> to_metadata() const;
  static VaeConfig from_metadata(const std::map<std::string, std::string>& metadata);
};

/// One batch's loss terms, each a [1, 1] variable averaged over the batch's examples.
struct VaeLoss {
  ag::Var loss;            // reconstruction + beta * kl
  ag::Var reconstruction;  // -log p(x | z) for one z ~ q(z | x) (up to the constant for `gaussian`)
  ag::Var kl;              // KL(q(z | x) || p(z)), analytic
};

class Vae : public nn::Module {
 public:
  Vae(const VaeConfig& config, ag::Rng& rng);
  const VaeConfig& config() const { return config_; }
  std::string describe() const override;

  struct Posterior {
    ag::Var mu, logvar;  // [B, Z] each
  };
  struct Likelihood {
    ag::Var mean;    // logits for Bernoulli, the mean for Gaussian decoders   [B, D]
    ag::Var logvar;  // gaussian_learned only (empty handle otherwise)         [B, D]
  };

  /// q(z | x).   x [B, D]
  Posterior encode(ag::Var x);
  /// p(x | z).   z [B, Z]
  Likelihood decode(ag::Var z);
  /// -log p(x | z) per example, [B, 1] (with `reduction` none) or folded as asked.
  ag::Var reconstruction_loss(const Likelihood& p, ag::Var x, ag::Reduction reduction);
  /// The expected data: sigmoid(logits) for Bernoulli, the mean for Gaussian decoders.
  ag::Var expected_x(const Likelihood& p);

  /// The negative ELBO (beta = 1) or the beta-VAE objective, with one sample of z.
  VaeLoss loss(ag::Var x, ag::Rng& rng, float beta = 1.0F);
  /// The same with the standard normal draws given, [B, Z] (data-parallel training hands
  /// each rank its rows of the one-process draws).
  VaeLoss loss(ag::Var x, const ag::Array& eps, float beta = 1.0F);

  /// Reconstructions through the posterior mean (no sampling).   x [B, D] -> [B, D]
  ag::Var reconstruct(ag::Var x);
  /// Decoded draws from the prior z ~ N(0, I).   -> [n, D] expected data
  ag::Var sample(ag::Tape& tape, std::size_t n, ag::Rng& rng);

  /// The importance-weighted bound (Burda et al. 2016) log (1/K) sum_k p(x, z_k) / q(z_k | x)
  /// with z_k ~ q(z | x), per example, in nats; -bound estimates -log p(x) and tightens as K
  /// grows (K = 1 is the ELBO). Computed without recording gradients; for `gaussian` the
  /// constant (D/2) log(pi) is included so the figure is a true log-density.
  /// `tape` is scratch space: it is reset before each of the K samples, so memory stays
  /// that of one forward pass whatever K is.   x [B, D] -> B values
  std::vector<double> importance_weighted_bound(ag::Tape& tape, const ag::Array& x, std::size_t k,
                                                ag::Rng& rng);

 private:
  // The loss once z (drawn from q) is on the tape.
  VaeLoss loss_at(ag::Var x, const Posterior& q, ag::Var z, float beta);

  VaeConfig config_;
  nn::Sequential& encoder_;
  nn::Linear& mu_;
  nn::Linear& logvar_;
  nn::Sequential& decoder_;
  nn::Module& out_;
  nn::Module* out_logvar_ = nullptr;
};

/// The decoder's terms shared by the Vae and the ConditionalVae, for config.decoder:
/// -log p(x | z) per example, [B, 1] (with `reduction` none) or folded as asked ...
ag::Var reconstruction_loss(Decoder decoder, const Vae::Likelihood& p, ag::Var x, ag::Reduction reduction);
/// ... the expected data (sigmoid of the logits for Bernoulli, the mean for Gaussian decoders) ...
ag::Var expected_x(Decoder decoder, const Vae::Likelihood& p);
/// ... and the learned log-variance from its head's raw output, kept softly above a floor.
ag::Var floored_logvar(ag::Var raw);

}  // namespace models
