// Train a tiny model: a 2-32-1 MLP learns XOR-like quadrants (label 1 where x * y > 0), with
// Adam on full-batch binary cross-entropy. The shortest complete program on the framework:
// a module, an optimizer, and the tape reused step after step.
//
//   train_tiny [STEPS]      (default 300)
//
// Prints the loss every 100 steps and the final accuracy; exits 1 if the model did not learn
// (accuracy below 0.95), so a test can run it.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "autograd/autograd.hpp"
#include "nn/nn.hpp"
#include "optim/optim.hpp"

struct Classifier : nn::Module {
  nn::Linear& fc1;
  nn::Linear& fc2;
  explicit Classifier(ag::Rng& rng)
      : fc1(register_module<nn::Linear>("fc1", 2, 32, rng)),
        fc2(register_module<nn::Linear>("fc2", 32, 1, rng)) {}
  ag::Var forward(ag::Var x) override { return fc2(ag::relu(fc1(x))); }  // [B, 2] -> [B, 1]
};

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 300;
  if (argc > 2 || steps <= 0) {
    std::fprintf(stderr, "usage: train_tiny [STEPS > 0]\n");
    return 2;
  }

  // 512 points uniform in [-1, 1]^2; the label says whether both coordinates share a sign.
  const std::size_t n = 512;
  ag::Rng rng(1);
  ag::Array x = xt::zeros<float>({n, std::size_t{2}});
  rng.fill_uniform(x, -1.0F, 1.0F);
  ag::Array y = xt::zeros<float>({n, std::size_t{1}});
  for (std::size_t i = 0; i < n; ++i) y(i, 0) = x(i, 0) * x(i, 1) > 0 ? 1.0F : 0.0F;

  Classifier model(rng);
  optim::Adam adam(model.parameters(), {.lr = 1e-2});
  ag::Tape tape;
  for (int step = 1; step <= steps; ++step) {
    tape.reset();  // storage is reused, nothing is freed
    ag::Var loss = ag::bce_with_logits(model(tape.constant(x)), tape.constant(y));
    adam.zero_grad();
    tape.backward(loss);
    adam.step();
    if (step % 100 == 0) std::printf("step %d  loss %.4f\n", step, loss.item());
  }

  // Accuracy: a logit above 0 predicts label 1.
  tape.reset();
  ag::NoGradGuard no_grad(tape);
  const ag::Array logits = model(tape.constant(x)).value();
  std::size_t correct = 0;
  for (std::size_t i = 0; i < n; ++i) correct += (logits(i, 0) > 0) == (y(i, 0) > 0.5F);
  const double accuracy = static_cast<double>(correct) / static_cast<double>(n);
  std::printf("accuracy %.3f (%zu of %zu)\n", accuracy, correct, n);
  return accuracy >= 0.95 ? 0 : 1;
}
