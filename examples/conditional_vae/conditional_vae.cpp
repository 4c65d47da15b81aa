// A conditional VAE written out by hand: the class label enters both the encoder and the
// decoder as a one-hot vector, so that after training we can ask for a chosen class.
// (models::ConditionalVae is the same model packaged; this file shows every step.)
//
//   conditional_vae [DATA_DIR] [EPOCHS] [LIMIT] [OUT.pgm]
//
// Trains on Fashion-MNIST (784 pixels, 10 classes) with the default VAE's sizes, prints the
// test loss per epoch, and writes OUT.pgm: a grid of samples, one row per class.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <numeric>
#include <string>

#include "autograd/autograd.hpp"
#include "datasets/dataset.hpp"
#include "datasets/loader.hpp"
#include "nn/nn.hpp"
#include "optim/adam.hpp"

constexpr std::size_t kClasses = 10, kPixels = 784, kHidden = 400, kLatent = 20;

// q(z | x, y) and p(x | z, y), each an MLP with one hidden layer.
struct ConditionalVae : nn::Module {
  ag::Rng& rng;  // first: the layers below draw their initial weights from it
  nn::Linear& enc = register_module<nn::Linear>("enc", kPixels + kClasses, kHidden, rng);
  nn::Linear& mu = register_module<nn::Linear>("mu", kHidden, kLatent, rng);
  nn::Linear& logvar = register_module<nn::Linear>("logvar", kHidden, kLatent, rng);
  nn::Linear& dec = register_module<nn::Linear>("dec", kLatent + kClasses, kHidden, rng);
  nn::Linear& out = register_module<nn::Linear>("out", kHidden, kPixels, rng);

  explicit ConditionalVae(ag::Rng& r) : rng(r) {}

  // Returns the decoder's logits [B, 784]; mu and logvar [B, 20] come back through the arguments.
  ag::Var encode_decode(ag::Var x, ag::Var y_onehot, ag::Var& mu_out, ag::Var& logvar_out) {
    ag::Var h = ag::relu(enc(ag::concat(x, y_onehot)));          // [B, 794] -> [B, 400]
    mu_out = mu(h);
    logvar_out = logvar(h);
    ag::Var z = ag::reparameterize(mu_out, logvar_out, rng);    // [B, 20]
    return decode(z, y_onehot);
  }
  ag::Var decode(ag::Var z, ag::Var y_onehot) { return out(ag::relu(dec(ag::concat(z, y_onehot)))); }
};

// Negative ELBO per example, averaged over the batch: reconstruction + KL.
ag::Var loss(ConditionalVae& model, ag::Tape& tape, const ag::Array& x, const ag::Array& labels) {
  ag::Var onehot = ag::one_hot(tape.constant(labels), kClasses);
  ag::Var mu, logvar;
  ag::Var logits = model.encode_decode(tape.constant(x), onehot, mu, logvar);
  return ag::bce_with_logits(logits, tape.constant(x), ag::Reduction::batch_mean) +
         ag::kl_to_standard_normal(mu, logvar, ag::Reduction::batch_mean);
}

void to_labels(std::span<const std::int32_t> from, ag::Array& to) {
  if (to.size() != from.size()) to.resize({from.size()});
  for (std::size_t i = 0; i < from.size(); ++i) to.data()[i] = static_cast<float>(from[i]);
}

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
  const int epochs = argc > 2 ? std::atoi(argv[2]) : 10;
  const std::size_t limit = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 0;
  const std::string picture = argc > 4 ? argv[4] : "conditional_vae_samples.pgm";
  try {
    const datasets::Dataset train = datasets::load_idx_dataset(dir, "train");
    const datasets::Dataset test = datasets::load_idx_dataset(dir, "t10k");
    auto first = [](std::size_t n, std::size_t limit) {
      std::vector<std::size_t> rows(limit ? std::min(n, limit) : n);
      std::iota(rows.begin(), rows.end(), std::size_t{0});
      return rows;
    };
    datasets::Loader train_loader(train, first(train.size(), limit), {.batch_size = 128, .seed = 1});
    datasets::Loader test_loader(test, first(test.size(), limit), {.batch_size = 500, .shuffle = false});
    ag::Rng rng(1);
    ConditionalVae model(rng);
    optim::Adam adam(model.parameters(), {.lr = 1e-3});
    ag::Tape tape;
    ag::Array labels;
    double test_loss = 0.0;
    for (int epoch = 1; epoch <= epochs; ++epoch) {
      train_loader.start_epoch();
      while (train_loader.next()) {
        tape.reset();
        to_labels(train_loader.labels(), labels);
        ag::Var l = loss(model, tape, train_loader.batch(), labels);
        adam.zero_grad();
        tape.backward(l);
        adam.step();
      }
      double total = 0.0;
      test_loader.start_epoch();
      while (test_loader.next()) {
        tape.reset();
        ag::NoGradGuard no_grad(tape);
        to_labels(test_loader.labels(), labels);
        total += loss(model, tape, test_loader.batch(), labels).item() * static_cast<double>(labels.size());
      }
      test_loss = total / static_cast<double>(test_loader.size());
      std::printf("epoch %2d  test loss %.3f\n", epoch, test_loss);
    }
    // Samples: row k holds 10 draws of class k, as a 280 x 280 grayscale picture (PGM).
    tape.reset();
    ag::Array wanted({kClasses * 10});
    for (std::size_t i = 0; i < wanted.size(); ++i) wanted.data()[i] = static_cast<float>(i / 10);
    ag::Array z({wanted.size(), kLatent});
    rng.fill_normal(z);
    const ag::Array images =
        ag::sigmoid(model.decode(tape.constant(z), ag::one_hot(tape.constant(wanted), kClasses))).value();
    std::ofstream pgm(picture, std::ios::binary);
    pgm << "P5\n280 280\n255\n";
    for (std::size_t row = 0; row < 280; ++row)
      for (std::size_t col = 0; col < 280; ++col) {
        const std::size_t image = (row / 28) * 10 + col / 28, pixel = (row % 28) * 28 + col % 28;
        pgm.put(static_cast<char>(static_cast<unsigned char>(images(image, pixel) * 255.0F + 0.5F)));
      }
    std::printf("final test loss %.3f; samples (one row per class) in %s\n", test_loss, picture.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "conditional_vae: %s\n", e.what());
    return 1;
  }
  return 0;
}
