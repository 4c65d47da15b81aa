// The importance-weighted bound (Burda et al. 2016), for any model with a Gaussian posterior
// and a standard normal prior: models::Vae and models::ConditionalVae both compute theirs here.
//
//   log p(x) >= log (1/K) sum_k p(x | z_k) p(z_k) / q(z_k | x),   z_k ~ q(z | x) = N(mu, exp(logvar))
//
// K = 1 is the ELBO; the bound tightens as K grows.
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

#include "autograd/autograd.hpp"
#include "models/vae.hpp"

namespace models {

/// log p(x | z) per example [B] for codes z [B, Z] recorded on the tape: the model's decoder
/// and likelihood, for the batch whose bound is computed.
using LogLikelihood = std::function<std::vector<double>(ag::Var z)>;

/// The bound per example, in nats, from the posterior's mu and logvar [B, Z], drawing the
/// K codes from `rng`. The tape is reset before each of the K samples (the caller turns
/// gradients off), so memory stays that of one decoder pass whatever K is.   -> B values
std::vector<double> importance_weighted_bound(ag::Tape& tape, const ag::Array& mu, const ag::Array& logvar,
                                              std::size_t k, ag::Rng& rng, const LogLikelihood& log_likelihood);

/// log p(x | z) per example from reconstruction_loss(..., Reduction::none) [B, 1]: its negation,
/// with the constant the `gaussian` decoder's loss leaves out: -log N(x; mean, 1/2) is
/// (x - mean)^2 + 0.5 log(pi) per feature, and the loss is the squared error alone.
std::vector<double> log_likelihoods(const ag::Array& reconstruction_loss, const VaeConfig& config);

}  // namespace models
