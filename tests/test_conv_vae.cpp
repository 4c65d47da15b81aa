// The convolutional VAE (--arch conv): the layers with PyTorch's names, its parameter
// count from the configuration alone, colour images through the channel permutation, and a
// small model that learns.
#include <doctest/doctest.h>

#include "datasets/synthetic.hpp"
#include "models/vae.hpp"
#include "models/vae_file.hpp"
#include "optim/adam.hpp"

namespace {

models::VaeConfig conv_config(std::size_t channels, std::size_t height, std::size_t width, std::size_t latent) {
  return {.input_dim = channels * height * width, .latent = latent, .decoder = models::Decoder::bernoulli,
          .arch = models::Arch::conv, .image = {channels, height, width}};
}

}  // namespace

TEST_CASE("conv VAE: the issue's layers, PyTorch's names and shapes, the count from the config") {
  ag::Rng rng(1);
  const models::VaeConfig config = conv_config(1, 28, 28, 20);
  models::Vae vae(config, rng);
  std::vector<std::string> names;
  std::vector<nn::TensorShape> shapes;
  for (const nn::StateEntry& e : vae.state_dict()) {
    names.push_back(e.name);
    shapes.push_back(e.shape);
  }
  CHECK(names == std::vector<std::string>{
                     "encoder.0.weight", "encoder.0.bias", "encoder.2.weight", "encoder.2.bias", "encoder.5.weight",
                     "encoder.5.bias", "mu.weight", "mu.bias", "logvar.weight", "logvar.bias", "decoder.0.weight",
                     "decoder.0.bias", "decoder.2.weight", "decoder.2.bias", "decoder.5.weight", "decoder.5.bias",
                     "out.weight", "out.bias"});
  CHECK(shapes[0] == nn::TensorShape{32, 1, 4, 4});
  CHECK(shapes[2] == nn::TensorShape{64, 32, 4, 4});
  CHECK(shapes[4] == nn::TensorShape{256, 64 * 7 * 7});
  CHECK(shapes[12] == nn::TensorShape{64 * 7 * 7, 256});
  CHECK(shapes[14] == nn::TensorShape{64, 32, 4, 4});  // ConvTranspose2d: [in, out, kh, kw]
  CHECK(shapes[16] == nn::TensorShape{32, 1, 4, 4});
  CHECK(models::parameter_count(config) == vae.num_parameters());
  models::VaeConfig learned = conv_config(3, 32, 16, 5);
  learned.decoder = models::Decoder::gaussian_learned;
  CHECK(models::parameter_count(learned) == models::Vae(learned, rng).num_parameters());
  // the metadata round trip keeps the architecture and the image size
  const models::VaeConfig back = models::VaeConfig::from_metadata(learned.to_metadata());
  CHECK(back.arch == models::Arch::conv);
  CHECK(back.image.channels == 3);
  CHECK(back.image.height == 32);
  CHECK(back.image.width == 16);
  // and an MLP's metadata has no architecture entry, as before
  CHECK(models::VaeConfig{}.to_metadata().count("arch") == 0);
}

TEST_CASE("conv VAE refuses images it cannot halve twice") {
  ag::Rng rng(1);
  CHECK_THROWS_WITH_AS(models::Vae(conv_config(1, 30, 28, 4), rng), doctest::Contains("divide by 4"),
                       std::invalid_argument);
  models::VaeConfig wrong = conv_config(1, 28, 28, 4);
  wrong.input_dim = 100;
  CHECK_THROWS_AS(models::Vae(wrong, rng), std::invalid_argument);
}

TEST_CASE("conv VAE on colour images: examples [B, H*W*3] in, the same layout out") {
  ag::Rng rng(2);
  models::Vae vae(conv_config(3, 8, 4, 3), rng);
  ag::Tape tape;
  ag::Array x({5, 96});
  rng.fill_uniform(x, 0.0F, 1.0F);
  CHECK(vae.reconstruct(tape.constant(x)).shape() == ag::Shape{5, 96});
  CHECK(vae.sample(tape, 7, rng).shape() == ag::Shape{7, 96});
  // A pixel's channels stay together: the logits of pixel (0, 0) depend on the decoder's last
  // layer through channel c only for output column c, so zeroing that layer's bias for channel 1
  // moves only columns 1, 4, 7, ... (channels interleaved).
  ag::Var before = vae.decode(tape.constant(ag::Array({1, 3}))).mean;
  const ag::Array first = before.value();
  ag::Parameter* out_bias = vae.named_parameters().back().parameter;  // out.bias [3]
  out_bias->value(1) += 1.0F;
  const ag::Array second = vae.decode(tape.constant(ag::Array({1, 3}))).mean.value();
  for (std::size_t j = 0; j < 96; ++j) CHECK(second(0, j) - first(0, j) == doctest::Approx(j % 3 == 1 ? 1.0 : 0.0));
}

TEST_CASE("a small conv VAE learns") {
  const datasets::Dataset data = datasets::binary_blobs(64, 64, 4, 0.05, 3);  // 64 examples of 8 x 8
  ag::Rng rng(3);
  models::Vae vae(conv_config(1, 8, 8, 4), rng);
  optim::Adam adam(vae.parameters(), {.lr = 3e-3});
  ag::Array batch({64, 64});
  for (std::size_t i = 0; i < 64; ++i) data.row_to_floats(i, &batch(i, 0));
  ag::Tape tape;
  auto step = [&] {
    tape.reset();
    models::VaeLoss l = vae.loss(tape.constant(batch), rng);
    adam.zero_grad();
    tape.backward(l.loss);
    adam.step();
    return l.loss.item();
  };
  const float first = step();
  float last = first;
  for (int i = 0; i < 60; ++i) last = step();
  CHECK(last < 0.7F * first);
}
