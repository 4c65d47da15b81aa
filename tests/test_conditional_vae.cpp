// The conditional VAE: shapes and names, the class reaching both networks, and training.
#include <doctest/doctest.h>

#include <cmath>

#include "datasets/loader.hpp"
#include "datasets/synthetic.hpp"
#include "models/conditional_vae.hpp"
#include "models/conditional_vae_file.hpp"
#include "models/vae_file.hpp"
#include "nn/checkpoint.hpp"
#include "optim/adam.hpp"
#include "tests/temp_dir.hpp"

using ag::Array;

TEST_CASE("the class enters the encoder and the decoder as one-hot columns") {
  ag::Rng rng(1);
  models::ConditionalVae cvae({.input_dim = 6, .hidden = {5}, .latent = 2}, 3, rng);
  const auto state = cvae.state_dict();
  CHECK(state[0].name == "encoder.0.weight");
  CHECK(state[0].shape == nn::TensorShape{5, 9});  // 6 features + 3 classes
  CHECK(state[4].name == "logvar.weight");
  CHECK(state[6].name == "decoder.0.weight");
  CHECK(state[6].shape == nn::TensorShape{5, 5});  // 2 latent + 3 classes
  ag::Tape tape;
  Array x({2, 6});
  rng.fill_uniform(x, 0.0F, 1.0F);
  // Same input and z, different class: different decodings.
  ag::Var z = tape.constant(Array({2, 2}));
  ag::Var a = cvae.expected_x(cvae.decode(z, tape.constant(Array{0.0F, 0.0F})));
  ag::Var b = cvae.expected_x(cvae.decode(z, tape.constant(Array{0.0F, 2.0F})));
  CHECK(a.value()(0, 0) == b.value()(0, 0));
  CHECK(a.value()(1, 0) != b.value()(1, 0));
  CHECK(cvae.sample(tape, Array{0.0F, 1.0F, 2.0F}, rng).shape() == ag::Shape{3, 6});
  CHECK_THROWS_AS(cvae.encode(tape.constant(x), tape.constant(Array{3.0F, 0.0F})), ag::ShapeError);
  CHECK_THROWS_AS(cvae.encode(tape.constant(x), tape.constant(Array{1.0F})), ag::ShapeError);
  CHECK_THROWS_AS(models::ConditionalVae({.input_dim = 6}, 0, rng), std::invalid_argument);
}

TEST_CASE("with the conv networks the class enters as image channels after the image's own") {
  ag::Rng rng(4);
  const models::ImageSize image{2, 4, 8};
  models::ConditionalVae cvae({.input_dim = 64, .latent = 3, .arch = models::Arch::conv, .image = image}, 3, rng);
  const auto state = cvae.state_dict();
  CHECK(state[0].name == "encoder.0.weight");
  CHECK(state[0].shape == nn::TensorShape{32, 5, 4, 4});  // 2 image channels + 3 classes
  CHECK(state[10].name == "decoder.0.weight");
  CHECK(state[10].shape == nn::TensorShape{256, 6});  // 3 latent + 3 classes
  // The encoder's weights on the class channels are what tells the classes apart: with
  // those of classes 0 and 2 made equal, examples of class 0 and 2 encode the same.
  float* w = cvae.parameters()[0]->value.data();  // [32, 5, 4, 4] in row-major order
  for (std::size_t o = 0; o < 32; ++o)
    for (std::size_t i = 0; i < 16; ++i) w[(o * 5 + 4) * 16 + i] = w[(o * 5 + 2) * 16 + i];
  ag::Tape tape;
  Array x({2, 64});
  rng.fill_uniform(x, 0.0F, 1.0F);
  for (std::size_t j = 0; j < 64; ++j) x(1, j) = x(0, j);  // the same image twice
  const Array mu = cvae.encode(tape.constant(x), tape.constant(Array{0.0F, 2.0F})).mu.value();
  const Array mu1 = cvae.encode(tape.constant(x), tape.constant(Array{0.0F, 1.0F})).mu.value();
  CHECK(mu(0, 0) == mu(1, 0));
  CHECK(mu1(0, 0) != mu1(1, 0));
  CHECK(cvae.sample(tape, Array{0.0F, 2.0F}, rng).shape() == ag::Shape{2, 64});
}

TEST_CASE("the learned-variance decoder: the Gaussian NLL with the log-variance head's floor") {
  ag::Rng rng(5);
  models::ConditionalVae cvae({.input_dim = 4, .hidden = {3}, .latent = 2, .decoder = models::Decoder::gaussian_learned},
                              2, rng);
  CHECK(cvae.state_dict().back().name == "out_logvar.bias");
  ag::Tape tape;
  Array x({1, 4}), z({1, 2}), label{1.0F};
  rng.fill_uniform(x, 0.0F, 1.0F);
  rng.fill_normal(z);
  const models::Vae::Likelihood p = cvae.decode(tape.constant(z), tape.constant(label));
  double expected = 0.0;  // sum over features of (log 2 pi + logvar + (x - mean)^2 / var) / 2
  for (std::size_t j = 0; j < 4; ++j) {
    const double lv = p.logvar.value()(0, j), d = x(0, j) - p.mean.value()(0, j);
    CHECK(lv > -6.0);
    expected += 0.5 * (std::log(2 * M_PI) + lv + d * d / std::exp(lv));
  }
  CHECK(cvae.reconstruction_loss(p, tape.constant(x), ag::Reduction::none).value()(0, 0) ==
        doctest::Approx(expected).epsilon(1e-5));
}

TEST_CASE("a conditional VAE learns labelled blobs") {
  const datasets::Dataset data = datasets::binary_blobs(400, 32, 4, 0.05, 1);
  REQUIRE(data.has_labels());
  ag::Rng rng(2);
  models::ConditionalVae cvae({.input_dim = 32, .hidden = {32}, .latent = 2}, 4, rng);
  optim::Adam adam(cvae.parameters(), {.lr = 3e-3});
  datasets::Loader loader(data, {.batch_size = 50, .binarize = false, .seed = 3});
  ag::Tape tape;
  Array labels;
  auto epoch = [&](bool train) {
    double total = 0.0;
    loader.start_epoch();
    while (loader.next()) {
      tape.reset();
      models::class_indices(loader.labels(), labels);
      models::VaeLoss l = cvae.loss(tape.constant(loader.batch()), tape.constant(labels), rng);
      total += l.loss.item();
      if (train) {
        adam.zero_grad();
        tape.backward(l.loss);
        adam.step();
      }
    }
    return total / 8.0;
  };
  const double before = epoch(false);
  for (int e = 0; e < 30; ++e) epoch(true);
  const double after = epoch(false);
  INFO("loss before " << before << ", after " << after);
  CHECK(after < 0.5 * before);
}

TEST_CASE("the loss with given draws equals the loss drawing them; parameter counts; files round-trip") {
  ag::Rng rng(3);
  models::ConditionalVae cvae({.input_dim = 6, .hidden = {5}, .latent = 2}, 3, rng);
  Array x({4, 6}), labels{0.0F, 2.0F, 1.0F, 2.0F};
  rng.fill_uniform(x, 0.0F, 1.0F);
  ag::Tape tape;
  ag::Rng a(9), b(9);
  const float drawn = cvae.loss(tape.constant(x), tape.constant(labels), a, 1.0F).loss.item();
  Array eps({4, 2});
  b.fill_normal(eps);
  CHECK(cvae.loss(tape.constant(x), tape.constant(labels), eps, 1.0F).loss.item() == drawn);

  using models::Decoder;
  for (Decoder decoder : {Decoder::bernoulli, Decoder::gaussian_learned}) {
    for (const auto& hidden : std::vector<std::vector<std::size_t>>{{5}, {7, 4}, {}}) {
      ag::Rng r(1);
      const models::VaeConfig c{.input_dim = 6, .hidden = hidden, .latent = 2, .decoder = decoder};
      CHECK(models::parameter_count(c, 3) == models::ConditionalVae(c, 3, r).num_parameters());
    }
    for (const models::ImageSize& image : {models::ImageSize{1, 8, 8}, models::ImageSize{3, 4, 12}}) {
      ag::Rng r(1);
      const models::VaeConfig c{.input_dim = image.channels * image.height * image.width, .latent = 2,
                                .decoder = decoder, .arch = models::Arch::conv, .image = image};
      for (std::size_t classes : {1, 5})
        CHECK(models::parameter_count(c, classes) == models::ConditionalVae(c, classes, r).num_parameters());
    }
  }

  TempDir dir("cvae");
  const std::filesystem::path path = dir.path / "model.safetensors";
  nn::save_module(path, cvae, models::conditional_metadata(cvae));
  const nn::SafetensorsFile file = nn::SafetensorsFile::load(path);
  CHECK(models::is_conditional(file));
  const auto loaded = models::load_conditional_vae(file);
  CHECK(loaded->num_classes() == 3);
  CHECK(loaded->reconstruct(tape.constant(x), tape.constant(labels)).value() ==
        cvae.reconstruct(tape.constant(x), tape.constant(labels)).value());
  // Metadata claiming other classes than the tensors hold is refused before a model is built.
  nn::Metadata wrong = models::conditional_metadata(cvae);
  wrong["classes"] = "4000000";
  nn::save_module(path, cvae, wrong);
  CHECK_THROWS_AS(models::load_conditional_vae(nn::SafetensorsFile::load(path)), nn::SafetensorsError);
}
