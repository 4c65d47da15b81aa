// bench_conv_step: where one training step of the conv VAE spends its time, op by op.
//
//   build/bench/bench_conv_step [--steps N] [--threads 1,2] [--cpu-time]
//
// The step of `vae train --arch conv` at batch 128, written out op by op over the model's own
// parameters (bench/step_profile.hpp times it and checks it against the model's loss). Prints,
// per op and thread count, the minimum over the steps of its wall time in milliseconds, or
// with --cpu-time of the calling thread's CPU time.
#include "bench/step_profile.hpp"

namespace {

using bench::step_profile::Step;

// A convolution with its bias; with relu, the ReLU after it fused (as nn::Sequential runs the model's).
ag::Var conv(Step& s, const std::string& name, ag::Var x, bool transposed, bool relu) {
  ag::Var w = s.p(name + ".weight");
  ag::Var b = s.p(name + ".bias");
  return s.op(name + (transposed ? " conv_transpose2d" : " conv2d") + (relu ? "+relu" : ""), [&] {
    return transposed ? ag::conv_transpose2d(x, w, b, {.stride = 2, .padding = 1, .relu = relu})
                      : ag::conv2d(x, w, b, {.stride = 2, .padding = 1, .relu = relu});
  });
}

ag::Var conv_vae_loss(Step& s, ag::Var x, const ag::Array& eps) {
  const std::size_t b = x.shape()[0];
  ag::Var h = s.op("reshape", [&] { return ag::reshape(x, {b, 1, 28, 28}); });
  h = conv(s, "encoder.0", h, false, true);
  h = conv(s, "encoder.2", h, false, true);
  h = s.op("flatten", [&] { return ag::flatten(h, 1); });
  h = s.linear("encoder.5", h, true);
  ag::Var mu = s.linear("mu", h), logvar = s.linear("logvar", h);
  ag::Var z = s.op("reparameterize", [&] { return ag::reparameterize(mu, logvar, eps); });
  h = s.linear("decoder.0", z, true);
  h = s.linear("decoder.2", h, true);
  h = s.op("unflatten", [&] { return ag::reshape(h, {b, 64, 7, 7}); });
  h = conv(s, "decoder.5", h, true, true);
  h = conv(s, "out", h, true, false);
  h = s.op("reshape", [&] { return ag::reshape(h, {b, 784}); });
  ag::Var rec = s.op("bce", [&] { return ag::bce_with_logits(h, x, ag::Reduction::batch_mean); });
  ag::Var kl = s.op("kl", [&] { return ag::kl_to_standard_normal(mu, logvar, ag::Reduction::batch_mean); });
  return s.op("loss sum", [&] { return rec + kl * 1.0F; });
}

}  // namespace

int main(int argc, char** argv) {
  return bench::step_profile::profile_step(argc, argv, "bench_conv_step", "conv-VAE",
                                           {.input_dim = 784, .latent = 20, .arch = models::Arch::conv,
                                            .image = {1, 28, 28}},
                                           conv_vae_loss);
}
