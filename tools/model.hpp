// The model a `vae` command trains or uses: the VAE, or the conditional VAE (trained with
// --conditional), which also takes each example's class. The training loop (the step, the
// data-parallel step, evaluation, checkpoints, pictures) and the subcommands are written
// once against this interface. Labels are a [B] tensor of class indices; a model without
// classes takes an empty handle (labels_on gives the right one for either).
//
//   std::unique_ptr<Model> model = make_model(config, num_classes, rng);   // 0 classes: the VAE
//   ag::Var y = model->labels_on(tape, loader.labels());
//   models::VaeLoss l = model->loss(tape.constant(loader.batch()), y, noise, beta);
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "models/conditional_vae.hpp"
#include "models/vae.hpp"
#include "nn/safetensors.hpp"

namespace tools {

class Model {
 public:
  virtual ~Model() = default;
  virtual nn::Module& module() = 0;
  virtual const models::VaeConfig& config() const = 0;
  /// The classes the model is conditioned on; 0 for the plain VAE.
  virtual std::size_t num_classes() const = 0;
  bool conditional() const { return num_classes() > 0; }
  /// What a model file stores about it: the configuration (and "model", "classes").
  virtual nn::Metadata metadata() const = 0;
  std::string describe() { return module().describe(); }

  /// Class indices as the model takes them: for a conditional model the [B] tensor of
  /// `labels` (each checked to be one of its classes; none at all is refused, naming what
  /// to do), for the plain VAE an empty handle. Reuses one buffer: no allocation per batch.
  ag::Var labels_on(ag::Tape& tape, std::span<const std::int32_t> labels);

  /// q(z | x[, y]).   x [B, D] -> mu, logvar [B, Z]
  virtual models::Vae::Posterior encode(ag::Var x, ag::Var labels) = 0;
  /// p(x | z[, y]).   z [B, Z] -> [B, D]
  virtual models::Vae::Likelihood decode(ag::Var z, ag::Var labels) = 0;
  virtual ag::Var reconstruction_loss(const models::Vae::Likelihood& p, ag::Var x, ag::Reduction reduction) = 0;
  virtual ag::Var expected_x(const models::Vae::Likelihood& p) = 0;
  /// The negative ELBO (beta = 1) or beta-VAE objective, one z per example drawn from
  /// `noise`, or with the standard normal draws `eps` [B, Z] given.
  virtual models::VaeLoss loss(ag::Var x, ag::Var labels, ag::Rng& noise, float beta) = 0;
  virtual models::VaeLoss loss(ag::Var x, ag::Var labels, const ag::Array& eps, float beta) = 0;
  /// Reconstructions through the posterior mean.   x [B, D] -> [B, D]
  ag::Var reconstruct(ag::Var x, ag::Var labels) { return expected_x(decode(encode(x, labels).mu, labels)); }
  /// The expected data decoded from latent codes z [n, Z] (of classes `labels`, n of them,
  /// for a conditional model), without recording gradients.   -> [n, D]
  ag::Array decoded(const ag::Array& z, std::span<const std::int32_t> labels);

  /// The importance-weighted bound per example (models/importance_weighted.hpp): of log p(x),
  /// or for a conditional model of log p(x | y) with y the `labels` (checked as labels_on
  /// does). `tape` is scratch space.   x [B, D] -> B values
  std::vector<double> importance_weighted_bound(ag::Tape& tape, const ag::Array& x,
                                                std::span<const std::int32_t> labels, std::size_t k, ag::Rng& rng);

 private:
  // The same with the classes as the model takes them (ignored by the plain VAE).
  virtual std::vector<double> bound(ag::Tape& tape, const ag::Array& x, const ag::Array& classes, std::size_t k,
                                    ag::Rng& rng) = 0;

  ag::Array labels_;
};

/// Whether `label` numbers one of `classes` classes, a whole number from 0 to classes - 1: the
/// one check of every label a command reads (data, --label, a latents file's last column).
/// Taken as a double, so that a float label is checked before any cast (past int32's range a
/// cast is undefined behaviour).
bool is_class(double label, std::size_t classes);

/// "4 classes (0 to 3)": how messages name the classes a label must be one of.
std::string classes_text(std::size_t classes);

/// Labels for a grid with one row per class: `per_class` times 0, then 1, ...
std::vector<std::int32_t> class_rows(std::size_t num_classes, std::size_t per_class);

/// A new model: the VAE, or with num_classes > 0 the conditional VAE.
std::unique_ptr<Model> make_model(const models::VaeConfig& config, std::size_t num_classes, ag::Rng& rng);

/// The model in a file `vae train` wrote, either kind, its sizes checked against its tensors
/// before anything is allocated (throws nn::SafetensorsError naming the file).
std::unique_ptr<Model> load_model_file(const nn::SafetensorsFile& file);

}  // namespace tools
