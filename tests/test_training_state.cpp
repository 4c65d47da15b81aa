// nn::save_training_state / restore_training_state: a loop stopped and restored continues
// exactly as the uninterrupted one; a damaged file changes nothing. And models/vae_file: a
// VAE's parameter count from its configuration, and metadata that does not fit its tensors.
#include <doctest/doctest.h>

#include <filesystem>
#include <limits>
#include <string>

#include "autograd/autograd.hpp"
#include "models/vae.hpp"
#include "models/vae_file.hpp"
#include "nn/checkpoint.hpp"
#include "nn/nn.hpp"
#include "nn/training_state.hpp"
#include "optim/adam.hpp"

namespace fs = std::filesystem;

namespace {

// A small regression loop whose every step draws noise from `rng`.
struct Loop {
  ag::Rng init{3}, rng{4};
  nn::Linear model{3, 2, init};
  optim::Adam adam{model.parameters(), {.lr = 0.05}};
  ag::Tape tape;

  void steps(int n) {
    for (int i = 0; i < n; ++i) {
      ag::Array x({4, 3});
      rng.fill_normal(x);
      tape.reset();
      ag::Var loss = ag::mean(ag::square(model(tape.constant(x)) - 1.0F));
      adam.zero_grad();
      tape.backward(loss);
      adam.step();
    }
  }
  nn::TrainingState state(std::string note = "") { return {model, adam, {{"noise", &rng}}, {{"note", note}}}; }
};

fs::path temp_file(const char* name) { return fs::temp_directory_path() / (std::string("vae_ts_") + name); }

}  // namespace

TEST_CASE("training state: stop, restore into fresh objects, continue identically") {
  Loop straight;
  straight.steps(10);

  Loop first;
  first.steps(4);
  const fs::path path = temp_file("resume.safetensors");
  nn::save_training_state(path, first.state("after 4"), {{"format", "test/1"}});

  Loop second;  // fresh weights, fresh optimizer, fresh generator
  nn::TrainingState state = second.state();
  nn::restore_training_state(nn::SafetensorsFile::load(path), state);
  CHECK(state.text.at("note") == "after 4");
  CHECK(second.adam.step_count() == 4);
  second.steps(6);
  CHECK(xt::all(xt::equal(second.model.weight.value, straight.model.weight.value)));
  CHECK(xt::all(xt::equal(second.model.bias->value, straight.model.bias->value)));
  fs::remove(path);
}

TEST_CASE("training state: a file without the generator or with other tensors changes nothing") {
  Loop saved;
  saved.steps(2);
  const fs::path path = temp_file("damaged.safetensors");
  // Weights and optimizer only: the generator's state is missing.
  nn::save_module(path, saved.model, {{"optimizer.step", "0x1p+1"}});
  Loop target;
  const ag::Array before = target.model.weight.value;
  nn::TrainingState state = target.state();
  CHECK_THROWS_WITH(nn::restore_training_state(nn::SafetensorsFile::load(path), state),
                    doctest::Contains("rng.noise"));
  CHECK(xt::all(xt::equal(target.model.weight.value, before)));
  CHECK(target.adam.step_count() == 0);
  CHECK_THROWS_AS(nn::save_training_state(path, target.state(), {{"rng.x", "1"}}), nn::SafetensorsError);
  fs::remove(path);
}

TEST_CASE("load_module refuses a NaN or infinite value, naming the file, the tensor and the index") {
  // Any module, not only a VAE read by the tools: a NaN weight would give NaN outputs without a word.
  ag::Rng init(5);
  nn::Linear source(3, 2, init);
  const fs::path path = temp_file("nan_weight.safetensors");
  for (const float bad : {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity()}) {
    source.bias->value(0, 1) = bad;
    nn::save_module(path, source, {});
    nn::Linear target(3, 2, init);
    const ag::Array before = target.weight.value;
    const std::string says = path.string() + ": tensor \"bias\" holds a non-finite value";
    CHECK_THROWS_WITH_AS(nn::load_module(nn::SafetensorsFile::load(path), target), doctest::Contains(says.c_str()),
                         nn::SafetensorsError);
    CHECK_THROWS_WITH(nn::load_module(nn::SafetensorsFile::load(path), target), doctest::Contains("at index 1"));
    CHECK(xt::all(xt::equal(target.weight.value, before)));  // nothing loaded
  }
  fs::remove(path);
}

TEST_CASE("vae_file: the parameter count of a configuration, and metadata that lies") {
  ag::Rng rng(1);
  for (const auto& hidden : {std::vector<std::size_t>{}, {7}, {9, 5}}) {
    for (models::Decoder d : {models::Decoder::bernoulli, models::Decoder::gaussian_learned}) {
      models::VaeConfig c{.input_dim = 12, .hidden = hidden, .latent = 3, .decoder = d};
      models::Vae vae(c, rng);
      CHECK(models::parameter_count(c) == vae.num_parameters());
    }
  }
  models::VaeConfig huge{.input_dim = 784, .hidden = {std::size_t{1} << 40, std::size_t{1} << 40}, .latent = 20};
  CHECK(models::parameter_count(huge) == 0);  // overflows: no such model

  models::VaeConfig small{.input_dim = 6, .hidden = {4}, .latent = 2};
  models::Vae vae(small, rng);
  const fs::path path = temp_file("vae.safetensors");
  nn::Metadata m = small.to_metadata();
  nn::save_module(path, vae, m);
  CHECK(models::load_vae(nn::SafetensorsFile::load(path))->num_parameters() == vae.num_parameters());
  m["hidden"] = "1000000000";
  nn::save_module(path, vae, m);
  CHECK_THROWS_WITH_AS(models::load_vae(nn::SafetensorsFile::load(path)), doctest::Contains("parameters"),
                       nn::SafetensorsError);
  fs::remove(path);
}
