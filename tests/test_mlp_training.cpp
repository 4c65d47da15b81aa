// End to end: an MLP built from nn and trained with optim learns to tell three concentric
// rings of 2-D points apart, a boundary no linear model can draw.
//
// Classes are scored one-vs-rest: three logits, each trained with bce_with_logits against
// its one-hot target; the prediction is the largest logit.
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <numbers>

#include "autograd/autograd.hpp"
#include "nn/nn.hpp"
#include "optim/optim.hpp"

using ag::Array;

namespace {

constexpr std::size_t kClasses = 3;

struct Dataset {
  Array x;        // [N, 2]
  Array one_hot;  // [N, 3]
  std::vector<std::size_t> label;
};

// Class k lies on the circle of radius k + 1 with Gaussian radial noise of sd 0.15: rings
// 1.0 apart, so the best possible accuracy is above 99.9%.
Dataset rings(std::size_t n, ag::Rng& rng) {
  Dataset d{Array({n, 2}), Array({n, kClasses}), std::vector<std::size_t>(n)};
  d.one_hot.fill(0.0F);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t k = i % kClasses;
    const double angle = 2.0 * std::numbers::pi * rng.uniform();
    const double radius = static_cast<double>(k + 1) + 0.15 * rng.normal();
    d.x(i, 0) = static_cast<float>(radius * std::cos(angle));
    d.x(i, 1) = static_cast<float>(radius * std::sin(angle));
    d.one_hot(i, k) = 1.0F;
    d.label[i] = k;
  }
  return d;
}

double accuracy(nn::Module& model, const Dataset& d) {
  ag::Tape tape;
  ag::NoGradGuard no_grad(tape);
  model.eval();
  const Array logits = model(tape.constant(d.x)).value();
  model.train();
  std::size_t correct = 0;
  for (std::size_t i = 0; i < d.label.size(); ++i) {
    std::size_t best = 0;
    for (std::size_t k = 1; k < kClasses; ++k)
      if (logits(i, k) > logits(i, best)) best = k;
    correct += best == d.label[i] ? 1 : 0;
  }
  return static_cast<double>(correct) / static_cast<double>(d.label.size());
}

Array rows(const Array& a, std::size_t begin, std::size_t count) {
  Array out({count, a.shape()[1]});
  std::copy(a.data() + begin * a.shape()[1], a.data() + (begin + count) * a.shape()[1], out.data());
  return out;
}

// Mini-batch training; returns the mean loss of the first and of the last epoch.
template <class Opt>
std::pair<double, double> train(nn::Module& model, Opt& opt, const optim::Schedule& schedule,
                                const Dataset& data, std::size_t epochs) {
  constexpr std::size_t kBatch = 50;
  const std::size_t batches = data.label.size() / kBatch;
  ag::Tape tape;
  double first = 0, last = 0;
  std::size_t step = 0;
  for (std::size_t epoch = 0; epoch < epochs; ++epoch) {
    double total = 0;
    for (std::size_t b = 0; b < batches; ++b) {
      schedule.apply(opt, step++);
      ag::Var x = tape.constant(rows(data.x, b * kBatch, kBatch));
      ag::Var t = tape.constant(rows(data.one_hot, b * kBatch, kBatch));
      ag::Var loss = ag::bce_with_logits(model(x), t, ag::Reduction::mean);
      total += loss.item();
      opt.zero_grad();
      tape.backward(loss);
      optim::clip_grad_norm(opt.parameters(), 10.0);
      opt.step();
      tape.reset();
    }
    (epoch == 0 ? first : last) = total / static_cast<double>(batches);
  }
  return {first, last};
}

nn::Sequential make_mlp(ag::Rng& rng) {
  return nn::Sequential(nn::Linear(2, 32, rng), nn::ReLU(), nn::Linear(32, 32, rng), nn::ReLU(),
                        nn::Linear(32, kClasses, rng));
}

}  // namespace

TEST_CASE("an MLP trained with Adam, warm-up and cosine decay separates three rings") {
  const auto start = std::chrono::steady_clock::now();
  ag::Rng rng(2024);
  const Dataset train_set = rings(600, rng);
  const Dataset test_set = rings(600, rng);
  nn::Sequential model = make_mlp(rng);
  CHECK(model.num_parameters() == (2 * 32 + 32) + (32 * 32 + 32) + (32 * 3 + 3));

  const double before = accuracy(model, test_set);
  optim::Adam opt(model.parameters(), {.lr = 1e-2});
  const std::size_t epochs = 60, steps = epochs * 12;
  optim::LinearWarmup schedule(24, optim::CosineAnnealingLR(1e-2, steps - 24, 1e-4));
  const auto [first_loss, last_loss] = train(model, opt, schedule, train_set, epochs);
  const double after = accuracy(model, test_set);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  MESSAGE("Adam: accuracy " << before << " -> " << after << ", loss " << first_loss << " -> "
                            << last_loss << ", " << seconds << " s");
  CHECK(before < 0.6);  // untrained: near chance (1/3)
  CHECK(after >= 0.95);
  CHECK(last_loss < 0.25 * first_loss);
}

TEST_CASE("the same MLP trained with SGD and Nesterov momentum also separates the rings") {
  ag::Rng rng(7);
  const Dataset train_set = rings(600, rng);
  const Dataset test_set = rings(600, rng);
  nn::Sequential model = make_mlp(rng);
  optim::SGD opt(model.parameters(), {.lr = 0.1, .momentum = 0.9, .nesterov = true});
  optim::StepLR schedule(0.1, 400, 0.5);
  const auto [first_loss, last_loss] = train(model, opt, schedule, train_set, 100);
  const double after = accuracy(model, test_set);
  MESSAGE("SGD: accuracy " << after << ", loss " << first_loss << " -> " << last_loss);
  CHECK(after >= 0.95);
}
