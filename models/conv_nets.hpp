// The convolutional encoder and decoder of `vae train --arch conv`, for images of C channels
// whose height and width divide by 4 (28 x 28 gray, 32 x 32 RGB, ...):
//
//   encoder  Conv2d(C, 32, 4, stride 2, padding 1), ReLU, Conv2d(32, 64, 4, 2, 1), ReLU,
//            Flatten, Linear(64 H/4 W/4, 256), ReLU                       [B, C, H, W] -> [B, 256]
//   decoder  Linear(Z, 256), ReLU, Linear(256, 64 H/4 W/4), ReLU, Unflatten(64, H/4, W/4),
//            ConvTranspose2d(64, 32, 4, 2, 1), ReLU                       [B, Z] -> [B, 32, H/2, W/2]
//   head     ConvTranspose2d(32, C, 4, 2, 1)                              -> [B, C, H, W]
//
// Each stride-2 layer halves (or doubles) the height and width exactly: (H + 2 - 4) / 2 + 1 = H/2.
// Layer names follow the nn.Sequential of scripts/vae_pytorch.py ("encoder.0.weight" is the
// first convolution, "encoder.5.weight" the linear layer), so checkpoints load there as they are.
#pragma once

#include <cstddef>

#include "autograd/random.hpp"
#include "nn/conv.hpp"
#include "nn/module.hpp"
#include "nn/sequential.hpp"

namespace models {

/// An image's channels and size; examples hold it row-major with channels interleaved
/// ([H, W] gray, [H, W, C] colour), as the data readers give it.
struct ImageSize {
  std::size_t channels = 1, height = 0, width = 0;
};

/// Examples [B, C H W] (pixels with channels interleaved) as images [B, C, H, W], and back.
/// Gray images need only a reshape; colour ones, stored [H, W, C], a permutation too.
ag::Var rows_to_images(ag::Var rows, const ImageSize& image);
ag::Var images_to_rows(ag::Var images, const ImageSize& image);

/// The width of the encoder's last layer and of the decoder's first.
inline constexpr std::size_t kConvHidden = 256;

nn::Sequential& make_conv_encoder(nn::Module& parent, const char* name, const ImageSize& image, ag::Rng& rng);
nn::Sequential& make_conv_decoder(nn::Module& parent, const char* name, std::size_t latent, const ImageSize& image,
                                  ag::Rng& rng);
/// The last layer, 32 channels at half size to C at full size: logits, a mean or a log-variance.
nn::ConvTranspose2d& make_conv_head(nn::Module& parent, const char* name, const ImageSize& image, ag::Rng& rng);

/// The number of parameters of encoder, two heads of width `latent`, decoder and `heads`
/// output heads, with `classes` one-hot inputs added to the encoder's image channels and to the
/// decoder's latent code (the conditional VAE); 0 if the count overflows.
std::size_t conv_parameter_count(const ImageSize& image, std::size_t latent, std::size_t heads,
                                 std::size_t classes = 0);

}  // namespace models
