// The conditional VAE (Sohn et al. 2015): a VAE whose encoder and decoder both see the
// class, so that samples can be drawn for a chosen class.
//
//   encoder  [x, onehot(y)] [B, D + C] -> h -> mu [B, Z], logvar [B, Z]
//   decoder  [z, onehot(y)] [B, Z + C] -> h' -> logits or mean [B, D]
//
// With the convolutional networks (VaeConfig::arch conv, models/conv_nets.hpp) the encoder
// sees the one-hot vector as C more image channels, each constant over the image (the image's
// own channels first), and the decoder's first linear layer takes [z, onehot(y)] as above.
//   loss     per example: reconstruction + beta * KL(q(z|x,y) || N(0, I)), averaged over the batch
//
// The class enters as a one-hot vector concatenated to each network's input (rather than a
// learned embedding): with ten classes it costs ten input columns, has no parameters of its
// own, and keeps the model's parameters those of the plain Vae's networks, named as the Vae's
// are ("encoder.0.weight", "mu.weight", ..., "out.weight"). Every decoder of the Vae.
//
//   models::ConditionalVae cvae(config, 10, rng);
//   ag::Array labels;  models::class_indices(loader.labels(), labels);
//   models::VaeLoss l = cvae.loss(tape.constant(loader.batch()), tape.constant(labels), rng);
//   ag::Var images = cvae.sample(tape, labels_to_draw, rng);   // one image per label
#pragma once

#include <vector>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "models/vae.hpp"

namespace models {

/// Class labels as the [B] float tensor of class indices the ops take; `out` keeps its
/// buffer between calls, so a training loop allocates nothing.
void class_indices(std::span<const std::int32_t> labels, ag::Array& out);

class ConditionalVae : public nn::Module {
 public:
  /// num_classes >= 1.
  ConditionalVae(const VaeConfig& config, std::size_t num_classes, ag::Rng& rng);
  const VaeConfig& config() const { return config_; }
  std::size_t num_classes() const { return num_classes_; }
  std::string describe() const override;

  /// q(z | x, y).   x [B, D], labels [B] -> mu, logvar [B, Z]
  Vae::Posterior encode(ag::Var x, ag::Var labels);
  /// p(x | z, y).   z [B, Z], labels [B] -> logits or mean [B, D]
  Vae::Likelihood decode(ag::Var z, ag::Var labels);
  /// -log p(x | z, y), folded by `reduction` (none: per example, [B, 1]).
  ag::Var reconstruction_loss(const Vae::Likelihood& p, ag::Var x, ag::Reduction reduction);
  ag::Var expected_x(const Vae::Likelihood& p);
  /// The negative ELBO (beta = 1) with one sample of z, averaged over the batch.
  VaeLoss loss(ag::Var x, ag::Var labels, ag::Rng& rng, float beta = 1.0F);
  /// The same with the standard normal draws given, [B, Z] (data-parallel training hands
  /// each rank its rows of the one-process draws).
  VaeLoss loss(ag::Var x, ag::Var labels, const ag::Array& eps, float beta = 1.0F);
  /// Reconstructions through the posterior mean.   [B, D], [B] -> [B, D]
  ag::Var reconstruct(ag::Var x, ag::Var labels);
  /// One decoded prior draw per label.   labels [n] -> [n, D] expected data
  ag::Var sample(ag::Tape& tape, const ag::Array& labels, ag::Rng& rng);
  /// The importance-weighted bound of log p(x | y) per example, K samples of z each
  /// (models/importance_weighted.hpp); `tape` is scratch space, reset as it goes.
  ///   x [B, D], labels [B] -> B values
  std::vector<double> importance_weighted_bound(ag::Tape& tape, const ag::Array& x, const ag::Array& labels,
                                                std::size_t k, ag::Rng& rng);

 private:
  // [x, onehot(labels)]: columns for rows [B, n], channels for images [B, C, H, W].
  ag::Var with_class(ag::Var x, ag::Var labels);
  // The loss once z (drawn from q) is on the tape.
  VaeLoss loss_at(ag::Var x, ag::Var labels, const Vae::Posterior& q, ag::Var z, float beta);

  VaeConfig config_;
  std::size_t num_classes_;
  nn::Sequential& encoder_;
  nn::Linear& mu_;
  nn::Linear& logvar_;
  nn::Sequential& decoder_;
  nn::Module& out_;
  nn::Module* out_logvar_ = nullptr;  // gaussian-learned only
};

}  // namespace models
