// Per-example figures of a trained VAE on a dataset, shared by `vae score` and
// `vae evaluate` so that the two always agree: the negative ELBO split into its
// reconstruction and KL terms (one z per example), and the importance-weighted bound.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "datasets/dataset.hpp"
#include "models/vae.hpp"
#include "tools/model.hpp"

namespace tools {

struct ElboTerms {
  std::vector<double> reconstruction, kl;  // per example, nats
};

/// One z ~ q(z|x) per example, drawn from a generator seeded with `seed`. `labels`: each
/// example's class, for a conditional model (LabelFlag::of); empty for the plain VAE.
ElboTerms elbo_terms(Model& model, const datasets::Dataset& data, std::span<const std::int32_t> labels,
                     std::uint64_t seed, std::size_t batch);

/// -log p(x) (or -log p(x | y), with `labels` as for elbo_terms) estimated with K importance
/// samples, per example, nats.
std::vector<double> iwae_nll(Model& model, const datasets::Dataset& data, std::span<const std::int32_t> labels,
                             std::size_t k, std::uint64_t seed);

/// The p-th percentile (0 to 100) of `sorted` (ascending, not empty): interpolated linearly
/// between the two nearest ranks, as numpy.percentile and torch.quantile do by default.
double percentile(const std::vector<double>& sorted, double p);

/// The area under the ROC curve of `scores` for telling `positive` examples apart (ties
/// count one half): the probability that a random positive scores above a random negative.
double auroc(const std::vector<double>& scores, const std::vector<bool>& positive);

}  // namespace tools
