#include "tools/scoring.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "autograd/ops.hpp"
#include "datasets/loader.hpp"

namespace tools {

ElboTerms elbo_terms(Model& model, const datasets::Dataset& data, std::span<const std::int32_t> labels,
                     std::uint64_t seed, std::size_t batch) {
  ag::Rng rng(seed);
  ag::Tape tape;
  ag::NoGradGuard no_grad(tape);
  datasets::Loader loader(data, {.batch_size = batch, .shuffle = false});
  loader.start_epoch();
  ElboTerms t;
  while (loader.next()) {
    tape.reset();
    const std::size_t rows = loader.batch().shape()[0], first = t.kl.size();  // in order: no shuffling
    ag::Var y = model.labels_on(tape, labels.empty() ? labels : labels.subspan(first, rows));
    ag::Var x = tape.constant(loader.batch());
    const models::Vae::Posterior q = model.encode(x, y);
    ag::Var z = ag::reparameterize(q.mu, q.logvar, rng);
    const ag::Array recon = model.reconstruction_loss(model.decode(z, y), x, ag::Reduction::none).value();
    const ag::Array kl = ag::sum(ag::kl_to_standard_normal(q.mu, q.logvar, ag::Reduction::none), 1).value();  // [B]
    for (std::size_t i = 0; i < recon.shape()[0]; ++i) {
      t.reconstruction.push_back(recon(i, 0));
      t.kl.push_back(kl(i));
    }
  }
  return t;
}

std::vector<double> iwae_nll(Model& model, const datasets::Dataset& data, std::span<const std::int32_t> labels,
                             std::size_t k, std::uint64_t seed) {
  ag::Rng rng(seed);
  ag::Tape tape;
  datasets::Loader loader(data, {.batch_size = 100, .shuffle = false});  // each of the K samples decodes the batch
  loader.start_epoch();
  std::vector<double> nll;
  while (loader.next()) {
    const std::size_t rows = loader.batch().shape()[0], first = nll.size();  // in order: no shuffling
    for (double b : model.importance_weighted_bound(tape, loader.batch(),
                                                    labels.empty() ? labels : labels.subspan(first, rows), k, rng))
      nll.push_back(-b);
  }
  return nll;
}

double percentile(const std::vector<double>& sorted, double p) {
  const double rank = p / 100 * static_cast<double>(sorted.size() - 1);
  const auto below = static_cast<std::size_t>(std::floor(rank));
  const std::size_t above = std::min(below + 1, sorted.size() - 1);
  const double t = rank - static_cast<double>(below), a = sorted[below], b = sorted[above];
  return t >= 0.5 ? b - (b - a) * (1 - t) : a + (b - a) * t;  // numpy's lerp, exact at both ends
}

double auroc(const std::vector<double>& scores, const std::vector<bool>& positive) {
  std::vector<std::size_t> order(scores.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return scores[a] < scores[b]; });
  // Mann-Whitney: the sum of the positives' ranks, tied scores sharing their mean rank.
  double rank_sum = 0, positives = 0;
  for (std::size_t i = 0; i < order.size();) {
    std::size_t j = i;
    while (j < order.size() && scores[order[j]] == scores[order[i]]) ++j;
    const double mean_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2;
    for (std::size_t k = i; k < j; ++k)
      if (positive[order[k]]) {
        rank_sum += mean_rank;
        positives += 1;
      }
    i = j;
  }
  const double negatives = static_cast<double>(scores.size()) - positives;
  if (positives == 0 || negatives == 0) throw std::invalid_argument("AUROC needs examples of both kinds");
  return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives);
}

}  // namespace tools
