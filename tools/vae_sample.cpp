// vae sample CKPT -n N --out F: N decoded draws from the prior, z ~ N(0, T^2 I). A
// conditional model draws class K with --label K, or without it a grid with one row per
// class (N draws each).
#include <memory>

#include <fmt/format.h>

#include "tools/command.hpp"
#include "tools/streams.hpp"

namespace tools {

Command add_sample_command(CLI::App& vae) {
  struct Flags {
    std::string model, out, n, temperature = "1", seed = "1";
  };
  auto f = std::make_shared<Flags>();
  CLI::App* app = vae.add_subcommand("sample", "decode draws from the prior (new examples)");
  add_model_argument(*app, f->model);
  app->add_option("-n", f->n, "how many (default 64; a conditional model without --label: per class, default 8)");
  app->add_option("--temperature", f->temperature, "scales z: below 1 gives more typical examples")
      ->capture_default_str();
  app->add_option("--seed", f->seed, "seed of the draws")->capture_default_str();
  app->add_option("--out", f->out, "output: .npy, .idx, .csv or a .png grid")->required();
  auto label = std::make_shared<LabelFlag>(*app, "conditional models: draw this class (default: every class, one row each)");
  auto overwrite = std::make_shared<OverwriteFlag>(*app);
  add_config_flag(*app);
  return {app, [f, label, overwrite] {
            const double temperature = parse_real_flag("--temperature", f->temperature, 0, 100);
            const std::uint64_t seed = parse_count_flag("--seed", f->seed, 0, std::numeric_limits<std::uint64_t>::max());
            check_extension("--out", f->out, {".npy", ".idx", ".gz", ".csv", ".png"});
            overwrite->claim(f->out);
            LoadedModel m = load_model(f->model);
            const std::optional<std::int32_t> k = label->get(*m.model);
            const bool grid = m.model->conditional() && !k;  // one row per class
            constexpr std::size_t kMaxDraws = 1'000'000;
            const std::size_t n = parse_count_flag("-n", f->n.empty() ? (grid ? "8" : "64") : f->n, 1, kMaxDraws);
            if (grid && n > kMaxDraws / m.model->num_classes())  // (as many for every class)
              throw FlagError(fmt::format("-n: {} for each of {} classes is more than {} draws; pass --label K for "
                                          "one class, or a smaller -n",
                                          n, m.model->num_classes(), kMaxDraws));
            const std::vector<std::int32_t> labels =
                grid ? class_rows(m.model->num_classes(), n) : std::vector<std::int32_t>(k ? n : 0, k.value_or(0));
            const std::size_t draws = grid ? labels.size() : n;
            ag::Rng rng(stream_seed(seed, kCommand));
            ag::Array z({draws, m.model->config().latent});
            rng.fill_normal(z);
            z *= static_cast<float>(temperature);
            write_array(f->out, m.model->decoded(z, labels), m.example, grid ? n : 8);
            fmt::print("sample: {} examples{} (temperature {}) in {}\n", draws,
                       grid ? fmt::format(", {} of each of {} classes, one row each", n, m.model->num_classes())
                            : k ? fmt::format(" of class {}", *k) : "",
                       temperature, f->out);
          }};
}

}  // namespace tools
