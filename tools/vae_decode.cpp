// vae decode CKPT LATENTS --out F: decodes latent vectors (rows of a .npy or .csv file).
#include <cmath>
#include <memory>

#include <fmt/format.h>

#include "datasets/error.hpp"
#include "tools/command.hpp"

namespace tools {

Command add_decode_command(CLI::App& vae) {
  struct Flags {
    std::string model, latents, out;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* app = vae.add_subcommand("decode", "decode latent vectors: Z columns, or the output of `vae encode` "
                                               "(whose first Z columns, the means, are used)");
  add_model_argument(*app, f->model);
  app->add_option("LATENTS", f->latents, ".npy or .csv file of latent vectors")->required();
  app->add_option("--out", f->out, "output: .npy, .idx, .csv or a .png grid")->required();
  auto label = std::make_shared<LabelFlag>(*app, "conditional models: the class to decode as (default: the label "
                                                 "column `vae encode` writes)");
  auto overwrite = std::make_shared<OverwriteFlag>(*app);
  add_config_flag(*app);
  return {app, [f, label, overwrite] {
            check_extension("--out", f->out, {".npy", ".idx", ".gz", ".csv", ".png"});
            LoadedModel m = load_model(f->model);
            const ag::Array codes = read_matrix(f->latents);
            const std::size_t z = m.model->config().latent, cols = codes.shape()[1];
            if (cols != z && cols != 2 * z && cols != 2 * z + 1)
              throw datasets::DataError(fmt::format("{}: rows of {} values; the model has {} latent dimensions "
                                                    "(expected {}, or {} / {} as `vae encode` writes)",
                                                    f->latents, cols, z, z, 2 * z, 2 * z + 1));
            ag::Array means = xt::view(codes, xt::all(), xt::range(0, z));
            std::vector<std::int32_t> labels;
            if (m.model->conditional() && cols == 2 * z + 1 && !label->get(*m.model))
              for (std::size_t i = 0; i < codes.shape()[0]; ++i) {
                // Checked before the cast: a float past int32's range converts to undefined behaviour.
                const float k = codes(i, 2 * z);
                if (!is_class(k, m.model->num_classes()))
                  throw datasets::DataError(fmt::format("{}: row {}: label {} (the last column) is not one of the "
                                                        "model's {}",
                                                        f->latents, i + 1, k, classes_text(m.model->num_classes())));
                labels.push_back(static_cast<std::int32_t>(k));
              }
            else
              labels = label->required(*m.model, codes.shape()[0], "decode");
            overwrite->claim(f->out);
            const ag::Array x = m.model->decoded(means, labels);
            write_array(f->out, x, m.example);
            fmt::print("decode: {} latent vectors in {}\n", x.shape()[0], f->out);
          }};
}

}  // namespace tools
