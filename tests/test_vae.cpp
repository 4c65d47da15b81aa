// The VAE: its loss against hand-computed values, its gradients against finite differences
// with the noise held fixed, and a small model that learns.
#include <doctest/doctest.h>

#include <cmath>
#include <numbers>

#include "datasets/synthetic.hpp"
#include "models/vae.hpp"
#include "optim/adam.hpp"

using ag::Array;

namespace {

// Sets every parameter from a list, in state-dict order.
void set_parameters(models::Vae& vae, const std::vector<std::vector<float>>& values) {
  auto params = vae.parameters();
  REQUIRE(params.size() == values.size());
  for (std::size_t p = 0; p < params.size(); ++p) {
    REQUIRE(params[p]->value.size() == values[p].size());
    std::copy(values[p].begin(), values[p].end(), params[p]->value.begin());
  }
}

double softplus(double x) { return std::log1p(std::exp(x)); }

}  // namespace

TEST_CASE("parameter names and shapes follow the PyTorch layout") {
  ag::Rng rng(1);
  models::Vae vae({.input_dim = 784, .hidden = {400}, .latent = 20}, rng);
  auto names = vae.named_parameters();
  std::vector<std::string> got;
  for (auto& n : names) got.push_back(n.name);
  CHECK(got == std::vector<std::string>{"encoder.0.weight", "encoder.0.bias", "mu.weight", "mu.bias",
                                        "logvar.weight", "logvar.bias", "decoder.0.weight",
                                        "decoder.0.bias", "out.weight", "out.bias"});
  CHECK(vae.num_parameters() == 784 * 400 + 400 + 2 * (400 * 20 + 20) + 20 * 400 + 400 + 400 * 784 + 784);
  auto state = vae.state_dict();
  CHECK(state[0].shape == nn::TensorShape{400, 784});
  CHECK(state[1].shape == nn::TensorShape{400});
}

TEST_CASE("the loss of a tiny fixed network equals the ELBO computed by hand") {
  // D = 2, no hidden layer, Z = 1: mu = a.x + b, logvar = c.x + d, z = mu + exp(logvar/2) eps,
  // logits = w z + v (per pixel).
  ag::Rng init(1);
  models::Vae vae({.input_dim = 2, .hidden = {}, .latent = 1}, init);
  // mu.weight [1,2], mu.bias [1], logvar.weight [1,2], logvar.bias [1], out.weight [2,1], out.bias [2]
  set_parameters(vae, {{0.5F, -1.0F}, {0.25F}, {0.2F, 0.4F}, {-0.5F}, {1.5F, -2.0F}, {0.1F, 0.3F}});
  const Array x = {{1.0F, 0.0F}, {0.25F, 0.75F}};

  Array eps({2, 1});
  ag::Rng(42).fill_normal(eps);  // the draw the loss will make from the same seed
  double recon = 0, kl = 0;
  for (int i = 0; i < 2; ++i) {
    const double x0 = x(i, 0), x1 = x(i, 1);
    const double mu = 0.5 * x0 - 1.0 * x1 + 0.25;
    const double lv = 0.2 * x0 + 0.4 * x1 - 0.5;
    const double z = mu + std::exp(lv / 2) * eps(i, 0);
    const double l0 = 1.5 * z + 0.1, l1 = -2.0 * z + 0.3;
    recon += softplus(l0) - l0 * x0 + softplus(l1) - l1 * x1;
    kl += -0.5 * (1 + lv - mu * mu - std::exp(lv));
  }
  recon /= 2;
  kl /= 2;

  ag::Tape tape;
  ag::Rng noise(42);
  models::VaeLoss l = vae.loss(tape.constant(x), noise, 1.0F);
  CHECK(l.reconstruction.item() == doctest::Approx(recon).epsilon(1e-6));
  CHECK(l.kl.item() == doctest::Approx(kl).epsilon(1e-6));
  CHECK(l.loss.item() == doctest::Approx(recon + kl).epsilon(1e-6));

  // beta scales the KL term only.
  tape.reset();
  ag::Rng noise2(42);
  models::VaeLoss b = vae.loss(tape.constant(x), noise2, 4.0F);
  CHECK(b.loss.item() == doctest::Approx(recon + 4 * kl).epsilon(1e-6));
}

TEST_CASE("the Gaussian decoders compute their stated likelihoods") {
  ag::Rng init(3);
  const Array x = {{0.5F, -0.25F, 1.0F}};
  for (auto decoder : {models::Decoder::gaussian, models::Decoder::gaussian_learned}) {
    models::Vae vae({.input_dim = 3, .hidden = {4}, .latent = 2, .decoder = decoder}, init);
    ag::Tape tape;
    auto p = vae.decode(tape.constant(Array{{0.3F, -0.7F}}));
    const double nll = vae.reconstruction_loss(p, tape.constant(x), ag::Reduction::sum).item();
    double expected = 0;
    for (int j = 0; j < 3; ++j) {
      const double d = x(0, j) - p.mean.value()(0, j);
      if (decoder == models::Decoder::gaussian) {
        expected += d * d;  // the squared error: -log N(x; mean, 1/2) without 0.5 log(pi)
      } else {
        const double lv = p.logvar.value()(0, j);
        CHECK(lv >= -6.0);  // the documented floor
        expected += 0.5 * (std::log(2 * std::numbers::pi) + lv + d * d / std::exp(lv));
      }
    }
    CHECK(nll == doctest::Approx(expected).epsilon(1e-5));
  }
}

TEST_CASE("gradients of the whole loss, through the sampling node, match finite differences") {
  for (auto decoder : {models::Decoder::bernoulli, models::Decoder::gaussian, models::Decoder::gaussian_learned}) {
    INFO("decoder " << models::to_string(decoder));
    ag::Rng init(7);
    models::Vae vae({.input_dim = 5, .hidden = {4, 3}, .latent = 2, .decoder = decoder}, init);
    Array x({3, 5});
    ag::Rng(8).fill_uniform(x, 0.0F, 1.0F);
    // The loss with eps drawn from a fresh generator of a fixed seed: eps is held fixed.
    auto loss_at = [&] {
      ag::Tape tape;
      ag::Rng noise(9);
      return static_cast<double>(vae.loss(tape.constant(x), noise, 0.7F).loss.item());
    };
    ag::Tape tape;
    ag::Rng noise(9);
    vae.zero_grad();
    tape.backward(vae.loss(tape.constant(x), noise, 0.7F).loss);

    double worst = 0;
    const float h = 0x1.0p-8F;
    for (ag::Parameter* p : vae.parameters()) {
      for (std::size_t i = 0; i < p->value.size(); ++i) {
        const float original = p->value.data()[i];
        auto at = [&](float offset) {
          p->value.data()[i] = original + offset;
          return loss_at();
        };
        const double numeric = (8 * (at(h) - at(-h)) - (at(2 * h) - at(-2 * h))) / (12.0 * h);
        p->value.data()[i] = original;
        const double analytic = p->grad.data()[i];
        worst = std::max(worst, std::abs(analytic - numeric) / (1e-3 + 1e-3 * std::abs(numeric)));
      }
    }
    CHECK(worst < 1.0);
  }
}

TEST_CASE("a small VAE on synthetic binary patterns: the test loss drops by a third") {
  // 4 prototype patterns of 64 pixels with 5% of pixels flipped: a latent space can explain them.
  const datasets::Dataset train = datasets::binary_blobs(512, 64, 4, 0.05, 11);
  ag::Rng rng(12);
  models::Vae vae({.input_dim = 64, .hidden = {32}, .latent = 4}, rng);
  optim::Adam adam(vae.parameters(), {.lr = 3e-3});
  Array x({train.size(), 64});
  for (std::size_t i = 0; i < train.size(); ++i) train.row_to_floats(i, &x(i, 0));
  ag::Tape tape;
  auto full_loss = [&] {
    ag::Rng eval(1);
    ag::NoGradGuard no_grad(tape);
    tape.reset();
    return vae.loss(tape.constant(x), eval).loss.item();
  };
  const float before = full_loss();
  Array batch({64, 64});
  for (int step = 0; step < 300; ++step) {
    const std::size_t start = (static_cast<std::size_t>(step) * 64) % train.size();
    for (std::size_t i = 0; i < 64; ++i)
      std::copy(&x(start + i, 0), &x(start + i, 0) + 64, &batch(i, 0));
    tape.reset();
    models::VaeLoss l = vae.loss(tape.constant(batch), rng);
    adam.zero_grad();
    tape.backward(l.loss);
    adam.step();
  }
  const float after = full_loss();
  INFO("loss before " << before << ", after " << after);
  CHECK(after < before * 2 / 3);
  // With 4 patterns and 5% noise the ideal reconstruction is about 64 * H(0.05) = 12.8 nats;
  // a model that learned the patterns gets well under the 44 nats of coin flips.
  CHECK(after < 30.0F);
}

TEST_CASE("the importance-weighted bound: K = 1 is an ELBO draw and the bound tightens with K") {
  ag::Rng rng(5);
  models::Vae vae({.input_dim = 16, .hidden = {8}, .latent = 2}, rng);
  Array x({20, 16});
  ag::Rng(6).fill_uniform(x, 0.0F, 1.0F);
  ag::Tape tape;
  auto mean_of = [](const std::vector<double>& v) {
    double s = 0;
    for (double b : v) s += b;
    return s / static_cast<double>(v.size());
  };
  ag::Rng r1(7), r100(7);
  const double k1 = mean_of(vae.importance_weighted_bound(tape, x, 1, r1));
  const double k100 = mean_of(vae.importance_weighted_bound(tape, x, 100, r100));
  // -ELBO from the analytic-KL loss, averaged over many draws, is close to -bound(K=1).
  double elbo = 0;
  ag::Rng noise(8);
  for (int s = 0; s < 200; ++s) {
    tape.reset();
    ag::NoGradGuard no_grad(tape);
    elbo -= vae.loss(tape.constant(x), noise).loss.item();
  }
  elbo /= 200;
  CHECK(k100 > k1);
  CHECK(k100 > elbo);
  CHECK(k1 == doctest::Approx(elbo).epsilon(0.02));
  CHECK_THROWS_AS(vae.importance_weighted_bound(tape, x, 0, r1), std::invalid_argument);
}

TEST_CASE("configuration: validation, metadata round trip, decoder names") {
  models::VaeConfig c{.input_dim = 100, .hidden = {128, 64}, .latent = 16,
                      .decoder = models::Decoder::gaussian_learned};
  const models::VaeConfig back = models::VaeConfig::from_metadata(c.to_metadata());
  CHECK(back.input_dim == 100);
  CHECK(back.hidden == std::vector<std::size_t>{128, 64});
  CHECK(back.latent == 16);
  CHECK(back.decoder == models::Decoder::gaussian_learned);
  models::VaeConfig none{.hidden = {}};
  CHECK(models::VaeConfig::from_metadata(none.to_metadata()).hidden.empty());
  CHECK_THROWS_WITH_AS(models::parse_decoder("poisson"), doctest::Contains("bernoulli"), std::invalid_argument);
  CHECK_THROWS_AS(models::VaeConfig::from_metadata({{"input_dim", "x"}}), std::invalid_argument);
  ag::Rng rng(1);
  CHECK_THROWS_AS(models::Vae({.latent = 0}, rng), std::invalid_argument);
  models::Vae vae({.input_dim = 4, .hidden = {3}, .latent = 2}, rng);
  ag::Tape tape;
  CHECK_THROWS_AS(vae.encode(tape.constant(Array({2, 5}))), ag::ShapeError);
}

TEST_CASE("the Gaussian decoder's bound includes the (D/2) log(pi) its loss leaves out") {
  ag::Rng rng(21);
  models::Vae vae({.input_dim = 6, .hidden = {5}, .latent = 2, .decoder = models::Decoder::gaussian}, rng);
  Array x({40, 6});
  ag::Rng(22).fill_uniform(x, 0.0F, 1.0F);
  ag::Tape tape;
  double bound = 0, loss = 0;
  ag::Rng r(23), noise(24);
  for (int s = 0; s < 100; ++s) {
    for (double b : vae.importance_weighted_bound(tape, x, 1, r)) bound += b / (40.0 * 100);
    tape.reset();
    ag::NoGradGuard no_grad(tape);
    loss += vae.loss(tape.constant(x), noise).loss.item() / 100.0;
  }
  // E[-bound(K=1)] = negative ELBO = loss + 3 log(pi) for D = 6 (3.434 nats).
  CHECK(-bound == doctest::Approx(loss + 3 * std::log(std::numbers::pi)).epsilon(0.01));
}

TEST_CASE("a reused tape gives the same gradients as a fresh one when batch sizes change") {
  ag::Rng rng(31);
  models::Vae vae({.input_dim = 8, .hidden = {6}, .latent = 3}, rng);
  ag::Tape reused;
  for (std::size_t rows : {8U, 3U, 11U, 1U, 8U, 5U}) {
    Array x({rows, 8});
    ag::Rng(rows).fill_uniform(x, 0.0F, 1.0F);
    auto grads_on = [&](ag::Tape& tape) {
      tape.reset();
      ag::Rng noise(7);
      vae.zero_grad();
      tape.backward(vae.loss(tape.constant(x), noise).loss);
      std::vector<Array> g;
      for (ag::Parameter* p : vae.parameters()) g.push_back(p->grad);
      return g;
    };
    {  // an evaluation pass in between leaves nothing behind
      ag::NoGradGuard no_grad(reused);
      reused.reset();
      ag::Rng noise(8);
      (void)vae.loss(reused.constant(x), noise);
    }
    ag::Tape fresh;
    const auto expected = grads_on(fresh);
    const auto got = grads_on(reused);
    for (std::size_t p = 0; p < got.size(); ++p) CHECK(got[p] == expected[p]);
  }
}
