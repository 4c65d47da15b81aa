// bench_mlp_step: where one training step of the default (MLP) VAE spends its time, op by op.
//
//   build/bench/bench_mlp_step [--steps N] [--threads 1,2] [--cpu-time] [--batch B]
//
// The step of `train_vae` at batch 128 or B (784-400-20, Bernoulli), written out op by op over the
// model's own parameters (bench/step_profile.hpp times it and checks it against the model's
// loss). Prints, per op and thread count, the minimum over the steps of its wall time in
// milliseconds, or with --cpu-time of the calling thread's CPU time.
#include "bench/step_profile.hpp"

namespace {

using bench::step_profile::Step;

ag::Var mlp_vae_loss(Step& s, ag::Var x, const ag::Array& eps) {
  ag::Var h = s.linear("encoder.0", x, true);
  ag::Var mu = s.linear("mu", h), logvar = s.linear("logvar", h);
  ag::Var z = s.op("reparameterize", [&] { return ag::reparameterize(mu, logvar, eps); });
  h = s.linear("decoder.0", z, true);
  h = s.linear("out", h);
  ag::Var rec = s.op("bce", [&] { return ag::bce_with_logits(h, x, ag::Reduction::batch_mean); });
  ag::Var kl = s.op("kl", [&] { return ag::kl_to_standard_normal(mu, logvar, ag::Reduction::batch_mean); });
  return s.op("loss sum", [&] { return rec + kl * 1.0F; });
}

}  // namespace

int main(int argc, char** argv) {
  return bench::step_profile::profile_step(argc, argv, "bench_mlp_step", "MLP-VAE", {}, mlp_vae_loss);
}
