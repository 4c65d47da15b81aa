// The convolution and pooling layers: PyTorch's shapes, initialization and descriptions.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "nn/nn.hpp"

namespace {

float largest_magnitude(const ag::Array& a) {
  float m = 0.0F;
  for (float v : a) m = std::max(m, std::abs(v));
  return m;
}

}  // namespace

TEST_CASE("Conv2d: weight [out, in, kh, kw] and bias [out] from U(+-1/sqrt(in kh kw))") {
  ag::Rng rng(1);
  nn::Conv2d conv(3, 8, {4, 2}, rng, {.stride = 2, .padding = 1});
  CHECK(conv.weight.value.shape() == ag::Shape{8, 3, 4, 2});
  REQUIRE(conv.bias != nullptr);
  CHECK(conv.bias->value.shape() == ag::Shape{8});
  const float bound = 1.0F / std::sqrt(24.0F);
  CHECK(largest_magnitude(conv.weight.value) <= bound);
  CHECK(largest_magnitude(conv.weight.value) > 0.9F * bound);  // 192 draws fill the interval
  CHECK(largest_magnitude(conv.bias->value) <= bound);
  CHECK(conv.describe() == "Conv2d(3, 8, kernel_size=(4, 2), stride=(2, 2), padding=(1, 1))");
  ag::Tape tape;
  CHECK(conv(tape.constant(ag::Array({5, 3, 28, 28}))).shape() == ag::Shape{5, 8, 14, 15});
  CHECK(nn::Conv2d(2, 3, 3, rng, {}, false).bias == nullptr);
}

TEST_CASE("ConvTranspose2d: weight [in, out, kh, kw], fan_in from weight.size(1) kh kw as PyTorch") {
  ag::Rng rng(2);
  nn::ConvTranspose2d up(64, 2, 4, rng, {.stride = 2, .padding = 1});
  CHECK(up.weight.value.shape() == ag::Shape{64, 2, 4, 4});
  const float bound = 1.0F / std::sqrt(2.0F * 16.0F);  // out kh kw = 32, not in kh kw = 1024
  CHECK(largest_magnitude(up.weight.value) <= bound);
  CHECK(largest_magnitude(up.weight.value) > 0.9F * bound);
  CHECK(largest_magnitude(up.bias->value) <= bound);
  CHECK(up.describe() == "ConvTranspose2d(64, 2, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1))");
  ag::Tape tape;
  CHECK(up(tape.constant(ag::Array({3, 64, 7, 7}))).shape() == ag::Shape{3, 2, 14, 14});
  const auto names = up.named_parameters();
  REQUIRE(names.size() == 2);
  CHECK(names[0].name == "weight");
  CHECK(names[1].name == "bias");
}

TEST_CASE("Sequential fuses a convolution and the ReLU after it into one op, with the bits of the two") {
  ag::Rng rng(3);
  nn::Sequential net;
  net.add<nn::Conv2d>(2, 8, 4, rng, ag::Conv2dOptions{.stride = 2, .padding = 1});
  net.add<nn::ReLU>();
  net.add<nn::ConvTranspose2d>(8, 4, 4, rng, ag::ConvTranspose2dOptions{.stride = 2, .padding = 1});
  net.add<nn::ReLU>();
  net.add<nn::Conv2d>(4, 3, 3, rng);
  net.add<nn::LeakyReLU>(0.1F);  // not a ReLU: not fused
  ag::Array x({5, 2, 12, 10});
  rng.fill_uniform(x, -1.0F, 1.0F);
  auto run = [&](bool whole) {
    ag::Tape tape;
    ag::Var h = tape.constant(x);
    if (whole) {
      h = net(h);
    } else {
      for (std::size_t i = 0; i < net.size(); ++i) h = net[i](h);
    }
    const std::size_t nodes = tape.size();
    for (ag::Parameter* p : net.parameters()) p->zero_grad();
    tape.backward(ag::sum(h * h));
    std::vector<ag::Array> out{h.value()};
    for (ag::Parameter* p : net.parameters()) out.push_back(p->grad);
    return std::pair{out, nodes};
  };
  const auto [fused, fused_nodes] = run(true);
  const auto [layer_by_layer, nodes] = run(false);
  CHECK(fused_nodes == nodes - 2);  // the two ReLUs, not the LeakyReLU
  REQUIRE(fused.size() == layer_by_layer.size());
  for (std::size_t i = 0; i < fused.size(); ++i) CHECK(fused[i] == layer_by_layer[i]);
}

TEST_CASE("pooling and upsampling layers") {
  ag::Tape tape;
  ag::Var x = tape.constant(ag::Array({2, 3, 8, 6}));
  CHECK(nn::MaxPool2d(2)(x).shape() == ag::Shape{2, 3, 4, 3});
  CHECK(nn::AvgPool2d(3, 2, 1)(x).shape() == ag::Shape{2, 3, 4, 3});
  CHECK(nn::Upsample({2, 3})(x).shape() == ag::Shape{2, 3, 16, 18});
  CHECK(nn::MaxPool2d(2).describe() == "MaxPool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))");
  CHECK(nn::MaxPool2d(2).state_dict().empty());
}
