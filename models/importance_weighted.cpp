#include "models/importance_weighted.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <stdexcept>

#include <fmt/format.h>

#include "autograd/ops.hpp"

namespace models {

std::vector<double> importance_weighted_bound(ag::Tape& tape, const ag::Array& mu, const ag::Array& logvar,
                                              std::size_t k, ag::Rng& rng, const LogLikelihood& log_likelihood) {
  const double log_2pi = std::log(2.0 * std::numbers::pi);
  const std::size_t batch = mu.shape()[0], latent = mu.shape()[1];
  if (k == 0) throw std::invalid_argument("importance_weighted_bound: K must be at least 1");
  if (k > std::numeric_limits<std::size_t>::max() / std::max<std::size_t>(1, batch))
    throw std::invalid_argument(fmt::format("importance_weighted_bound: K = {} is too large", k));
  // log w_k = log p(x | z_k) + log p(z_k) - log q(z_k | x), collected per example.
  std::vector<double> log_w(batch * k);
  ag::Array eps({batch, latent});
  for (std::size_t s = 0; s < k; ++s) {
    tape.reset();
    rng.fill_normal(eps);
    ag::Var z = ag::reparameterize(tape.constant(mu), tape.constant(logvar), eps);
    const std::vector<double> log_px = log_likelihood(z);
    for (std::size_t i = 0; i < batch; ++i) {
      double log_prior = 0.0, log_posterior = 0.0;
      for (std::size_t j = 0; j < latent; ++j) {
        const double zj = z.value()(i, j), e = eps(i, j);
        log_prior += -0.5 * (zj * zj + log_2pi);
        log_posterior += -0.5 * (e * e + log_2pi + logvar(i, j));
      }
      log_w[i * k + s] = log_px[i] + log_prior - log_posterior;
    }
  }
  tape.reset();
  // log-mean-exp, shifted by the maximum so that exp never overflows or underflows to all zeros.
  std::vector<double> bound(batch);
  for (std::size_t i = 0; i < batch; ++i) {
    const double* w = &log_w[i * k];
    const double top = *std::max_element(w, w + k);
    double total = 0.0;
    for (std::size_t s = 0; s < k; ++s) total += std::exp(w[s] - top);
    bound[i] = top + std::log(total / static_cast<double>(k));
  }
  return bound;
}

std::vector<double> log_likelihoods(const ag::Array& reconstruction_loss, const VaeConfig& config) {
  const double constant = config.decoder == Decoder::gaussian
                              ? 0.5 * std::log(std::numbers::pi) * static_cast<double>(config.input_dim)
                              : 0.0;
  std::vector<double> out(reconstruction_loss.shape()[0]);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = -static_cast<double>(reconstruction_loss(i, 0)) - constant;
  return out;
}

}  // namespace models
