// An MLP classifier on Fashion-MNIST: cross-entropy, dropout, AdamW with no weight decay on
// biases (two parameter groups), and train()/eval() around evaluation.
//
//   mlp_classifier [DATA_DIR] [EPOCHS] [LIMIT]
//
// 784 -> 512 -> 256 -> 10 with ReLU and dropout 0.2; batch 128; lr 1e-3. Prints the test
// accuracy after each epoch. LIMIT keeps the first LIMIT examples of each split (0: all).
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <numeric>
#include <string>

#include "autograd/autograd.hpp"
#include "datasets/dataset.hpp"
#include "datasets/loader.hpp"
#include "nn/nn.hpp"
#include "optim/adam.hpp"

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
  const int epochs = argc > 2 ? std::atoi(argv[2]) : 10;
  const std::size_t limit = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 0;
  try {
    const datasets::Dataset train = datasets::load_idx_dataset(dir, "train");
    const datasets::Dataset test = datasets::load_idx_dataset(dir, "t10k");
    auto first = [&](std::size_t n) {
      std::vector<std::size_t> rows(limit ? std::min(n, limit) : n);
      std::iota(rows.begin(), rows.end(), std::size_t{0});
      return rows;
    };
    datasets::Loader train_loader(train, first(train.size()), {.batch_size = 128, .seed = 1});
    datasets::Loader test_loader(test, first(test.size()), {.batch_size = 1000, .shuffle = false});

    ag::Rng rng(1);
    nn::Sequential model(nn::Linear(784, 512, rng), nn::ReLU(), nn::Dropout(0.2F, rng),
                         nn::Linear(512, 256, rng), nn::ReLU(), nn::Dropout(0.2F, rng),
                         nn::Linear(256, 10, rng));
    // Weight decay on the weights only, as is usual: biases go in a group without it.
    optim::ParamGroup weights, biases{.weight_decay = 0.0};
    for (const nn::NamedParameter& p : model.named_parameters())
      (p.name.ends_with("bias") ? biases : weights).params.push_back(p.parameter);
    optim::AdamW opt({weights, biases}, {.lr = 1e-3, .weight_decay = 1e-2});

    ag::Tape tape;
    ag::Array labels;
    auto to_labels = [&](std::span<const std::int32_t> from) {
      if (labels.size() != from.size()) labels.resize({from.size()});
      for (std::size_t i = 0; i < from.size(); ++i) labels.data()[i] = static_cast<float>(from[i]);
      return tape.constant(labels);
    };
    double accuracy = 0.0;
    for (int epoch = 1; epoch <= epochs; ++epoch) {
      model.train();
      train_loader.start_epoch();
      while (train_loader.next()) {
        tape.reset();
        ag::Var logits = model(tape.constant(train_loader.batch()));           // [B, 10]
        ag::Var loss = ag::cross_entropy(logits, to_labels(train_loader.labels()));  // mean over B
        opt.zero_grad();
        tape.backward(loss);
        opt.step();
      }
      model.eval();  // dropout off
      std::size_t correct = 0;
      test_loader.start_epoch();
      while (test_loader.next()) {
        tape.reset();
        ag::NoGradGuard no_grad(tape);
        ag::Var predicted = ag::argmax(model(tape.constant(test_loader.batch())), 1);  // [B]
        const auto truth = test_loader.labels();
        for (std::size_t i = 0; i < truth.size(); ++i) correct += predicted.value()(i) == static_cast<float>(truth[i]);
      }
      accuracy = static_cast<double>(correct) / static_cast<double>(test_loader.size());
      std::printf("epoch %2d  test accuracy %.2f%%\n", epoch, 100.0 * accuracy);
    }
    std::printf("final test accuracy %.2f%%\n", 100.0 * accuracy);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mlp_classifier: %s\n", e.what());
    return 1;
  }
  return 0;
}
