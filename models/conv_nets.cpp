#include "models/conv_nets.hpp"

#include <limits>

#include "nn/activation.hpp"
#include "nn/linear.hpp"
#include "nn/reshape_layers.hpp"

namespace models {
namespace {

constexpr std::size_t kChannels1 = 32, kChannels2 = 64, kKernel = 4;
constexpr ag::Conv2dOptions kDown{.stride = 2, .padding = 1};
constexpr ag::ConvTranspose2dOptions kUp{.stride = 2, .padding = 1};

/// The flattened size at the bottleneck: 64 channels at a quarter of the height and width.
std::size_t bottleneck(const ImageSize& image) { return kChannels2 * (image.height / 4) * (image.width / 4); }

}  // namespace

ag::Var rows_to_images(ag::Var rows, const ImageSize& image) {
  const std::size_t b = rows.rows();
  if (image.channels == 1) return ag::reshape(rows, {b, 1, image.height, image.width});
  return ag::permute(ag::reshape(rows, {b, image.height, image.width, image.channels}), {0, 3, 1, 2});
}

ag::Var images_to_rows(ag::Var images, const ImageSize& image) {
  const std::size_t b = images.rows(), d = image.channels * image.height * image.width;
  if (image.channels == 1) return ag::reshape(images, {b, d});
  return ag::reshape(ag::permute(images, {0, 2, 3, 1}), {b, d});
}

nn::Sequential& make_conv_encoder(nn::Module& parent, const char* name, const ImageSize& image, ag::Rng& rng) {
  auto net = std::make_unique<nn::Sequential>();
  net->add<nn::Conv2d>(image.channels, kChannels1, kKernel, rng, kDown);
  net->add<nn::ReLU>();
  net->add<nn::Conv2d>(kChannels1, kChannels2, kKernel, rng, kDown);
  net->add<nn::ReLU>();
  net->add<nn::Flatten>();
  net->add<nn::Linear>(bottleneck(image), kConvHidden, rng);
  net->add<nn::ReLU>();
  return parent.register_module(name, std::move(net));
}

nn::Sequential& make_conv_decoder(nn::Module& parent, const char* name, std::size_t latent, const ImageSize& image,
                                  ag::Rng& rng) {
  auto net = std::make_unique<nn::Sequential>();
  net->add<nn::Linear>(latent, kConvHidden, rng);
  net->add<nn::ReLU>();
  net->add<nn::Linear>(kConvHidden, bottleneck(image), rng);
  net->add<nn::ReLU>();
  net->add<nn::Unflatten>(1, ag::Shape{kChannels2, image.height / 4, image.width / 4});
  net->add<nn::ConvTranspose2d>(kChannels2, kChannels1, kKernel, rng, kUp);
  net->add<nn::ReLU>();
  return parent.register_module(name, std::move(net));
}

nn::ConvTranspose2d& make_conv_head(nn::Module& parent, const char* name, const ImageSize& image, ag::Rng& rng) {
  return parent.register_module<nn::ConvTranspose2d>(name, kChannels1, image.channels, kKernel, rng, kUp);
}

std::size_t conv_parameter_count(const ImageSize& image, std::size_t latent, std::size_t heads,
                                 std::size_t classes) {
  // Every factor is bounded by the validation (sides at most 2^16, latent at most 2^16), so
  // only the bottleneck products (and a huge class count) can grow large.
  const long double c = static_cast<long double>(image.channels), flat = static_cast<long double>(bottleneck(image)),
                    z = static_cast<long double>(latent), h = kConvHidden, k2 = kKernel * kKernel;
  const long double total = (kChannels1 * c * k2 + kChannels1) + (kChannels2 * kChannels1 * k2 + kChannels2) +
                            (flat + 1) * h + 2 * (h + 1) * z +                       // encoder and heads
                            (z + 1) * h + (h + 1) * flat + (kChannels2 * kChannels1 * k2 + kChannels1) +  // decoder
                            static_cast<long double>(heads) * (kChannels1 * c * k2 + c) +
                            static_cast<long double>(classes) * (kChannels1 * k2 + h);  // conditional inputs
  if (total > static_cast<long double>(std::numeric_limits<std::size_t>::max() / 2)) return 0;
  return static_cast<std::size_t>(total);
}

}  // namespace models
