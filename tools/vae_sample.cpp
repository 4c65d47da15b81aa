// vae sample CKPT -n N --out F: N decoded draws from the prior, z ~ N(0, T^2 I).
#include <memory>

#include <fmt/format.h>

#include "tools/command.hpp"
#include "tools/streams.hpp"

namespace tools {

Command add_sample_command(CLI::App& vae) {
  struct Flags {
    std::string model, out, n = "64", temperature = "1", seed = "1";
  };
  auto f = std::make_shared<Flags>();
  CLI::App* app = vae.add_subcommand("sample", "decode draws from the prior (new examples)");
  add_model_argument(*app, f->model);
  app->add_option("-n", f->n, "how many")->capture_default_str();
  app->add_option("--temperature", f->temperature, "scales z: below 1 gives more typical examples")
      ->capture_default_str();
  app->add_option("--seed", f->seed, "seed of the draws")->capture_default_str();
  app->add_option("--out", f->out, "output: .npy, .idx, .csv or a .png grid")->required();
  add_config_flag(*app);
  return {app, [f] {
            const std::size_t n = parse_count_flag("-n", f->n, 1, 1'000'000);
            const double temperature = parse_real_flag("--temperature", f->temperature, 0, 100);
            const std::uint64_t seed = parse_count_flag("--seed", f->seed, 0, std::numeric_limits<std::uint64_t>::max());
            check_extension("--out", f->out, {".npy", ".idx", ".gz", ".csv", ".png"});
            LoadedModel m = load_model(f->model);
            ag::Rng rng(stream_seed(seed, kCommand));
            ag::Array z({n, m.vae->config().latent});
            rng.fill_normal(z);
            z *= static_cast<float>(temperature);
            ag::Tape tape;
            ag::NoGradGuard no_grad(tape);
            const ag::Array x = m.vae->expected_x(m.vae->decode(tape.constant(z))).value();
            write_array(f->out, x, m.example_shape);
            fmt::print("sample: {} examples (temperature {}) in {}\n", n, temperature, f->out);
          }};
}

}  // namespace tools
