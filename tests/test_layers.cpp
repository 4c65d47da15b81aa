// The layers beyond Linear: train()/eval() switching, state dict names and shapes.
#include <doctest/doctest.h>

#include "autograd/autograd.hpp"
#include "nn/nn.hpp"

using ag::Array;

TEST_CASE("train() and eval() switch Dropout and BatchNorm1d inside a Sequential") {
  ag::Rng rng(1);
  nn::Sequential net(nn::Linear(4, 8, rng), nn::BatchNorm1d(8), nn::ReLU(), nn::Dropout(0.5F, rng));
  ag::Tape tape;
  Array x({16, 4});
  rng.fill_normal(x);
  auto& bn = dynamic_cast<nn::BatchNorm1d&>(*net.named_children()[1].second);
  ag::Var train_out = net(tape.constant(x));
  std::size_t zeros = 0;
  for (float v : train_out.value()) zeros += v == 0.0F;
  CHECK(bn.num_batches_tracked.data()[0] == 1.0F);
  CHECK(bn.running_mean.data()[0] != 0.0F);
  net.eval();
  const Array mean_before = bn.running_mean;
  ag::Var a = net(tape.constant(x)), b = net(tape.constant(x));
  CHECK(a.value() == b.value());  // no dropout, running statistics: deterministic
  CHECK(bn.running_mean == mean_before);
  CHECK(bn.num_batches_tracked.data()[0] == 1.0F);
  CHECK(zeros > 16 * 8 / 2 - 16);  // ReLU and dropout zero most of the training output
}

TEST_CASE("state dicts use PyTorch's names and shapes") {
  ag::Rng rng(1);
  nn::BatchNorm1d bn(3);
  std::vector<std::string> names;
  for (const nn::StateEntry& e : bn.state_dict()) names.push_back(e.name);
  CHECK(names == std::vector<std::string>{"weight", "bias", "running_mean", "running_var", "num_batches_tracked"});
  CHECK(bn.state_dict()[4].shape == nn::TensorShape{});
  CHECK(bn.state_dict()[0].shape == nn::TensorShape{3});
  nn::LayerNorm ln(4);
  CHECK(ln.weight->value == xt::ones<float>({4}));
  nn::Embedding emb(10, 3, rng);
  CHECK(emb.state_dict()[0].shape == nn::TensorShape{10, 3});
  ag::Tape tape;
  ag::Var e = emb(tape.constant(Array{{1.0F, 2.0F}, {9.0F, 1.0F}}));
  REQUIRE(e.shape() == ag::Shape{2, 2, 3});
  CHECK(e.value()(1, 1, 2) == emb.weight.value(1, 2));
  CHECK_THROWS_AS(emb(tape.constant(Array{10.0F})), ag::ShapeError);
}

TEST_CASE("Flatten, Unflatten, Identity and the activations keep PyTorch's shapes") {
  ag::Tape tape;
  ag::Var x = tape.constant(Array({2, 3, 4}));
  CHECK(nn::Flatten()(x).shape() == ag::Shape{2, 12});
  CHECK(nn::Unflatten(1, {3, 1, 4})(nn::Flatten()(x)).shape() == ag::Shape{2, 3, 1, 4});
  CHECK_THROWS_AS(nn::Unflatten(1, {5, 2})(nn::Flatten()(x)), ag::ShapeError);
  CHECK(nn::Identity()(x).index() == x.index());
  CHECK(nn::LeakyReLU(0.1F)(tape.constant(Array{-1.0F})).item() == doctest::Approx(-0.1));
  CHECK(nn::GELU().describe() == "GELU()");
}
