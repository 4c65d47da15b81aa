// A convolutional autoencoder on Fashion-MNIST, built from the convolution, pooling and
// upsampling layers: the shape of a 28x28 image through the network is in the comments.
//
//   conv_autoencoder [DATA_DIR] [EPOCHS] [LIMIT]
//
// Trains with Adam (lr 2e-3, batch 32) on the first LIMIT training images (0: all) and prints
// the test reconstruction loss (binary cross-entropy per image, in nats) before training and
// after each epoch; exits non-zero unless training brought it down by 5%.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <numeric>
#include <string>
#include <vector>

#include "autograd/autograd.hpp"
#include "datasets/dataset.hpp"
#include "datasets/loader.hpp"
#include "nn/nn.hpp"
#include "optim/adam.hpp"

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
  const int epochs = argc > 2 ? std::atoi(argv[2]) : 3;
  const std::size_t limit = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 0;
  try {
    const datasets::Dataset train = datasets::load_idx_dataset(dir, "train");
    const datasets::Dataset test = datasets::load_idx_dataset(dir, "t10k");
    auto first = [](const datasets::Dataset& d, std::size_t n) {
      std::vector<std::size_t> rows(n ? std::min(n, d.size()) : d.size());
      std::iota(rows.begin(), rows.end(), std::size_t{0});
      return rows;
    };
    datasets::Loader train_loader(train, first(train, limit), {.batch_size = 32, .seed = 1});
    datasets::Loader test_loader(test, first(test, 1000), {.batch_size = 250, .shuffle = false});

    ag::Rng rng(1);
    nn::Sequential model(
        nn::Unflatten(1, {1, 28, 28}),                       // [B, 784] -> [B, 1, 28, 28]
        nn::Conv2d(1, 16, 3, rng, {.padding = 1}),           // [B, 16, 28, 28]
        nn::ReLU(), nn::MaxPool2d(2),                        // [B, 16, 14, 14]
        nn::Conv2d(16, 8, 3, rng, {.padding = 1}),           // [B, 8, 14, 14]
        nn::ReLU(), nn::MaxPool2d(2),                        // [B, 8, 7, 7]: the code, 392 values
        nn::Upsample(2),                                     // [B, 8, 14, 14]
        nn::Conv2d(8, 16, 3, rng, {.padding = 1}),           // [B, 16, 14, 14]
        nn::ReLU(),
        nn::ConvTranspose2d(16, 1, 4, rng, {.stride = 2, .padding = 1}),  // [B, 1, 28, 28]: logits
        nn::Flatten());                                      // [B, 784]
    optim::Adam opt(model.parameters(), {.lr = 2e-3});
    ag::Tape tape;

    // Binary cross-entropy of the reconstruction, summed over pixels, averaged over images.
    auto loss_of = [&](const ag::Array& batch) {
      ag::Var x = tape.constant(batch);
      const auto images = static_cast<float>(batch.shape()[0]);
      return ag::bce_with_logits(model(x), x, ag::Reduction::sum) * (1.0F / images);
    };
    auto test_loss = [&] {
      double total = 0;
      test_loader.start_epoch();
      while (test_loader.next()) {
        tape.reset();
        ag::NoGradGuard no_grad(tape);
        total += loss_of(test_loader.batch()).item() * static_cast<double>(test_loader.batch().shape()[0]);
      }
      return total / static_cast<double>(test_loader.size());
    };

    const double before = test_loss();
    std::printf("%s\n%zu parameters\ntest reconstruction loss before training: %.2f nats per image\n",
                model.to_string().c_str(), model.num_parameters(), before);
    double after = before;
    for (int epoch = 1; epoch <= epochs; ++epoch) {
      train_loader.start_epoch();
      while (train_loader.next()) {
        tape.reset();
        ag::Var loss = loss_of(train_loader.batch());
        opt.zero_grad();
        tape.backward(loss);
        opt.step();
      }
      after = test_loss();
      std::printf("epoch %d  test reconstruction loss %.2f nats per image\n", epoch, after);
    }
    if (epochs > 0 && !(after < 0.95 * before)) {
      std::fprintf(stderr, "conv_autoencoder: training did not lower the loss by 5%% (%.2f -> %.2f)\n", before, after);
      return 1;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "conv_autoencoder: %s\n", e.what());
    return 1;
  }
  return 0;
}
