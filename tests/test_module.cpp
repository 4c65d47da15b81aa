// nn::Module: dotted names, parameter counts, train/eval, the state dict and its errors,
// Sequential's naming and forward, and the printed module tree.
#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "autograd/autograd.hpp"
#include "nn/nn.hpp"

using ag::Array;

namespace {

// A VAE-shaped model: two nested levels, so names have three parts.
struct Encoder : nn::Module {
  nn::Linear& fc1;
  nn::Linear& fc2;
  explicit Encoder(ag::Rng& rng)
      : fc1(register_module<nn::Linear>("fc1", 6, 4, rng)),
        fc2(register_module<nn::Linear>("fc2", 4, 2, rng, false)) {}
  std::string describe() const override { return "Encoder"; }
};

struct Model : nn::Module {
  ag::Parameter& scale;  // registered before the children: it comes first
  Encoder& encoder;
  nn::Sequential& decoder;
  ag::Array& counter;
  explicit Model(ag::Rng& rng)
      : scale(register_parameter("scale", Array{{0.5F}}, {})),
        encoder(register_module<Encoder>("encoder", rng)),
        decoder(register_module<nn::Sequential>("decoder", nn::Linear(2, 3, rng), nn::ReLU())),
        counter(register_buffer("counter", Array{{7.0F, 8.0F}}, {2})) {}
};

std::vector<std::string> names_of(nn::Module& m) {
  std::vector<std::string> names;
  for (const auto& named : m.named_parameters()) names.push_back(named.name);
  return names;
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const nn::StateDictError& e) {
    return e.what();
  }
  return "no StateDictError";
}

}  // namespace

TEST_CASE("parameters get dotted names in registration order, own parameters first") {
  ag::Rng rng(1);
  Model model(rng);
  const std::vector<std::string> expected = {"scale",
                                             "encoder.fc1.weight",
                                             "encoder.fc1.bias",
                                             "encoder.fc2.weight",
                                             "decoder.0.weight",
                                             "decoder.0.bias"};
  CHECK(names_of(model) == expected);
  // parameters() is the same list, pointing at the very objects the members refer to.
  const std::vector<ag::Parameter*> params = model.parameters();
  REQUIRE(params.size() == 6);
  CHECK(params[0] == &model.scale);
  CHECK(params[1] == &model.encoder.fc1.weight);
  CHECK(params[3] == &model.encoder.fc2.weight);
  CHECK(model.encoder.fc2.bias == nullptr);
  // 1 + (6*4 + 4) + 4*2 + (2*3 + 3) = 46 scalars; the buffer is not a parameter.
  CHECK(model.num_parameters() == 46);
  CHECK(model.encoder.num_parameters() == 36);
}

TEST_CASE("train() and eval() propagate to every submodule") {
  ag::Rng rng(1);
  Model model(rng);
  CHECK(model.is_training());
  model.eval();
  CHECK_FALSE(model.is_training());
  CHECK_FALSE(model.encoder.is_training());
  CHECK_FALSE(model.encoder.fc2.is_training());
  CHECK_FALSE(model.decoder[1].is_training());
  model.encoder.train();  // only that subtree
  CHECK(model.encoder.fc1.is_training());
  CHECK_FALSE(model.decoder[0].is_training());
  CHECK_FALSE(model.is_training());
  // A child added to a module in eval mode joins in eval mode.
  model.eval();
  model.decoder.add<nn::Sigmoid>();
  CHECK_FALSE(model.decoder[2].is_training());
}

TEST_CASE("zero_grad clears every parameter's gradient in the tree") {
  ag::Rng rng(1);
  Model model(rng);
  for (ag::Parameter* p : model.parameters()) p->grad.fill(3.0F);
  model.zero_grad();
  for (ag::Parameter* p : model.parameters())
    for (float g : p->grad) CHECK(g == 0.0F);
}

TEST_CASE("state dict: names, logical shapes, and a round trip through a snapshot") {
  ag::Rng rng(2);
  Model model(rng);
  const std::vector<nn::StateEntry> entries = model.state_dict();
  REQUIRE(entries.size() == 7);
  // Each module's parameters, then its buffers, then its children (PyTorch's order).
  CHECK(entries[0].name == "scale");
  CHECK(entries[1].name == "counter");
  CHECK(entries[2].name == "encoder.fc1.weight");
  CHECK(entries[2].shape == nn::TensorShape{4, 6});
  CHECK(entries[3].name == "encoder.fc1.bias");
  CHECK(entries[3].shape == nn::TensorShape{4});  // stored [1, 4], saved as PyTorch's [4]
  CHECK(entries[3].array == &model.encoder.fc1.bias->value);
  CHECK(entries[0].shape == nn::TensorShape{1, 1});  // registered with no logical shape: as stored
  CHECK(entries[1].shape == nn::TensorShape{2});
}

TEST_CASE("load_state_dict restores saved values exactly") {
  ag::Rng rng(3);
  Model model(rng);
  const nn::TensorMap saved = model.state_dict_copy();
  CHECK(saved.at("counter").shape == nn::TensorShape{2});
  CHECK(saved.at("counter").values == std::vector<float>{7.0F, 8.0F});

  // Perturb every tensor, check that it changed, load, check that it is back.
  for (const nn::StateEntry& e : model.state_dict())
    for (float& v : *e.array) v += 1.0F;
  CHECK(model.encoder.fc1.weight.value(0, 0) == saved.at("encoder.fc1.weight").values[0] + 1.0F);
  model.load_state_dict(saved);
  for (const nn::StateEntry& e : model.state_dict()) {
    const std::vector<float>& want = saved.at(e.name).values;
    CHECK(std::vector<float>(e.array->begin(), e.array->end()) == want);
  }

  // Another model with the same architecture but other random values loads them too.
  ag::Rng other_rng(99);
  Model other(other_rng);
  CHECK(other.encoder.fc1.weight.value(1, 2) != model.encoder.fc1.weight.value(1, 2));
  other.load_state_dict(saved);
  CHECK(other.encoder.fc1.weight.value(1, 2) == model.encoder.fc1.weight.value(1, 2));
  CHECK((*other.decoder[0].state_dict()[1].array)(0, 2) == saved.at("decoder.0.bias").values[2]);
}

TEST_CASE("load_state_dict errors name the tensor and both shapes, and change nothing") {
  ag::Rng rng(4);
  Model model(rng);
  const nn::TensorMap good = model.state_dict_copy();
  const float before = model.encoder.fc1.weight.value(0, 0);

  SUBCASE("a missing tensor") {
    nn::TensorMap source = good;
    source.erase("encoder.fc1.bias");
    source.at("scale").values[0] = 123.0F;  // would be loaded first if nothing were checked
    const std::string message = error_of([&] { model.load_state_dict(source); });
    CHECK(message.find("'encoder.fc1.bias'") != std::string::npos);
    CHECK(message.find("missing") != std::string::npos);
    CHECK(message.find("[4]") != std::string::npos);
    CHECK(model.scale.value(0, 0) == 0.5F);
  }
  SUBCASE("a wrong shape: the transposed weight") {
    nn::TensorMap source = good;
    source.at("encoder.fc1.weight").shape = {6, 4};
    for (auto& [name, t] : source) std::fill(t.values.begin(), t.values.end(), 9.0F);
    try {
      model.load_state_dict(source);
      FAIL("no exception");
    } catch (const nn::StateDictError& e) {
      const std::string message = e.what();
      CHECK(e.tensor() == "encoder.fc1.weight");
      CHECK(message.find("'encoder.fc1.weight'") != std::string::npos);
      CHECK(message.find("[4, 6] in the module") != std::string::npos);
      CHECK(message.find("[6, 4] in the source") != std::string::npos);
    }
    CHECK(model.encoder.fc1.weight.value(0, 0) == before);
    CHECK(model.scale.value(0, 0) == 0.5F);
  }
  SUBCASE("a bias saved 2-D is not the logical [out]") {
    nn::TensorMap source = good;
    source.at("decoder.0.bias").shape = {1, 3};
    const std::string message = error_of([&] { model.load_state_dict(source); });
    CHECK(message.find("'decoder.0.bias' has shape [3] in the module but [1, 3] in the source") !=
          std::string::npos);
  }
  SUBCASE("the right shape with the wrong number of values") {
    nn::TensorMap source = good;
    source.at("counter").values.push_back(1.0F);
    const std::string message = error_of([&] { model.load_state_dict(source); });
    CHECK(message.find("'counter'") != std::string::npos);
    CHECK(message.find("needs 2 values; the source holds 3") != std::string::npos);
  }
  SUBCASE("an unexpected tensor: an error when strict, ignored otherwise") {
    nn::TensorMap source = good;
    source["encoder.fc3.weight"] = nn::Tensor{{2, 2}, {1, 2, 3, 4}};
    const std::string message = error_of([&] { model.load_state_dict(source); });
    CHECK(message.find("'encoder.fc3.weight'") != std::string::npos);
    CHECK(message.find("[2, 2]") != std::string::npos);
    source.at("scale").values[0] = 2.5F;
    model.load_state_dict(source, /*strict=*/false);
    CHECK(model.scale.value(0, 0) == 2.5F);
  }
}

TEST_CASE("registration refuses bad or duplicate names and inconsistent shapes") {
  nn::Module m;
  m.register_parameter("w", Array({2, 3}));
  CHECK_THROWS_AS(m.register_parameter("w", Array({1, 1})), std::invalid_argument);
  CHECK_THROWS_AS(m.register_buffer("w", Array({1, 1})), std::invalid_argument);
  CHECK_THROWS_AS(m.register_parameter("a.b", Array({1, 1})), std::invalid_argument);
  CHECK_THROWS_AS(m.register_parameter("", Array({1, 1})), std::invalid_argument);
  CHECK_THROWS_AS(m.register_module<nn::ReLU>("w"), std::invalid_argument);
  m.register_buffer("b", Array({1, 1}));
  m.register_module<nn::ReLU>("r");
  CHECK_THROWS_AS(m.register_parameter("b", Array({1, 1})), std::invalid_argument);
  CHECK_THROWS_AS(m.register_parameter("r", Array({1, 1})), std::invalid_argument);
  CHECK_THROWS_AS(m.register_module<nn::Tanh>("r"), std::invalid_argument);
  CHECK_THROWS_AS(m.register_parameter("v", Array({1, 4}), {5}), std::invalid_argument);
  m.register_parameter("v", Array({1, 4}), {2, 2});
  CHECK(m.state_dict()[1].name == "v");
  CHECK(m.state_dict()[1].shape == nn::TensorShape{2, 2});
}

TEST_CASE("Sequential names children 0, 1, ... and chains their forwards") {
  ag::Rng rng(5);
  nn::Sequential seq;
  nn::Linear& first = seq.add<nn::Linear>(3, 2, rng);
  seq.add<nn::ReLU>();
  seq.add(std::make_unique<nn::Linear>(2, 1, rng));
  CHECK(seq.size() == 3);
  CHECK(&seq[0] == &first);
  const std::vector<std::string> expected = {"0.weight", "0.bias", "2.weight", "2.bias"};
  CHECK(names_of(seq) == expected);
  CHECK_THROWS_AS(seq[3], std::out_of_range);

  // forward is fc2(relu(fc1(x))), computed here op by op.
  ag::Tape tape;
  ag::Var x = tape.constant(Array{{1.0F, -2.0F, 0.5F}, {0.0F, 3.0F, -1.0F}});
  ag::Var y = seq(x);
  auto& last = static_cast<nn::Linear&>(seq[2]);
  ag::Var by_hand = last(ag::relu(first(x)));
  REQUIRE(y.shape() == ag::Shape{2, 1});
  CHECK(y.value()(0, 0) == by_hand.value()(0, 0));
  CHECK(y.value()(1, 0) == by_hand.value()(1, 0));
  // The ReLU is really applied: the hidden layer has negatives for this input and seed.
  const ag::Array hidden = first(x).value();
  CHECK(*std::min_element(hidden.begin(), hidden.end()) < 0.0F);
}

TEST_CASE("a module without a single-input forward says so when called") {
  ag::Rng rng(6);
  Encoder encoder(rng);
  ag::Tape tape;
  CHECK_THROWS_WITH_AS(encoder(tape.constant(Array({1, 6}))),
                       doctest::Contains("Encoder has no forward"), std::logic_error);
}

TEST_CASE("moving a module keeps the references its members hold valid") {
  ag::Rng rng(7);
  nn::Sequential a(nn::Linear(2, 2, rng), nn::Tanh());
  const float w = static_cast<nn::Linear&>(a[0]).weight.value(1, 1);
  nn::Sequential b = std::move(a);
  auto& fc = static_cast<nn::Linear&>(b[0]);
  CHECK(fc.weight.value(1, 1) == w);
  CHECK(b.parameters()[0] == &fc.weight);
  CHECK(b.state_dict()[0].array == &fc.weight.value);
}

TEST_CASE("the module tree prints like PyTorch's") {
  ag::Rng rng(8);
  Model model(rng);
  const std::string expected =
      "Module(\n"
      "  (encoder): Encoder(\n"
      "    (fc1): Linear(in_features=6, out_features=4, bias=true)\n"
      "    (fc2): Linear(in_features=4, out_features=2, bias=false)\n"
      "  )\n"
      "  (decoder): Sequential(\n"
      "    (0): Linear(in_features=2, out_features=3, bias=true)\n"
      "    (1): ReLU()\n"
      "  )\n"
      ")";
  CHECK(model.to_string() == expected);
}
