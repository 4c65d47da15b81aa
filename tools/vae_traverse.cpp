// vae traverse CKPT: latent traversal, one row per dimension, that dimension swept from
// -range to +range while the others stay at 0 (the prior's mean).
#include <memory>

#include <fmt/format.h>

#include "tools/command.hpp"

namespace tools {

Command add_traverse_command(CLI::App& vae) {
  struct Flags {
    std::string model, out, dims, range = "3", steps = "9";
  };
  auto f = std::make_shared<Flags>();
  CLI::App* app = vae.add_subcommand("traverse", "sweep each latent dimension in turn (one row per dimension)");
  add_model_argument(*app, f->model);
  app->add_option("--dims", f->dims, "dimensions to sweep, comma-separated (default: the first 10)");
  app->add_option("--range", f->range, "sweep from -range to +range")->capture_default_str();
  app->add_option("--steps", f->steps, "values per row")->capture_default_str();
  app->add_option("--out", f->out, "a .png grid (or .npy)")->required();
  auto label = std::make_shared<LabelFlag>(*app, "conditional models: the class to decode as");
  auto overwrite = std::make_shared<OverwriteFlag>(*app);
  add_config_flag(*app);
  return {app, [f, label, overwrite] {
            check_extension("--out", f->out, {".png", ".npy"});
            const double range = parse_real_flag("--range", f->range, 0, 100);
            const std::size_t steps = parse_count_flag("--steps", f->steps, 1, 1000);
            LoadedModel m = load_model(f->model);
            const std::size_t z = m.model->config().latent;
            std::vector<std::size_t> dims = f->dims.empty() ? std::vector<std::size_t>{}
                                                            : parse_list_flag("--dims", f->dims, 0, z - 1);
            for (std::size_t j = 0; f->dims.empty() && j < std::min<std::size_t>(10, z); ++j) dims.push_back(j);
            constexpr std::size_t kMaxRows = 1'000'000;  // decoded at once: a list of repeats must not ask for GBs
            if (dims.size() > kMaxRows / steps)
              throw FlagError(fmt::format("--dims: {} dimensions of {} steps each are more than {} decoded examples",
                                          dims.size(), steps, kMaxRows));
            ag::Array codes = xt::zeros<float>({dims.size() * steps, z});
            for (std::size_t r = 0; r < dims.size(); ++r)
              for (std::size_t s = 0; s < steps; ++s)
                codes(r * steps + s, dims[r]) =
                    steps == 1 ? 0.0F : static_cast<float>(-range + 2 * range * static_cast<double>(s) / static_cast<double>(steps - 1));
            const std::vector<std::int32_t> labels = label->required(*m.model, codes.shape()[0], "decode");
            overwrite->claim(f->out);
            const ag::Array x = m.model->decoded(codes, labels);
            write_array(f->out, x, m.example, steps);
            fmt::print("traverse: dimensions {} over [-{}, {}] in {}\n", fmt::join(dims, ","), range, range, f->out);
          }};
}

}  // namespace tools
