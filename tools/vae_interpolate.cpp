// vae interpolate CKPT --data D --from I --to J: decodes the path between two examples'
// latent means (straight, or spherical with --slerp).
#include <cmath>
#include <memory>

#include <fmt/format.h>

#include "tools/command.hpp"

namespace tools {

Command add_interpolate_command(CLI::App& vae) {
  struct Flags {
    std::string model, out, from = "0", to = "1", steps = "10";
    bool slerp = false;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* app = vae.add_subcommand("interpolate", "decode the path between two examples' latent means");
  add_model_argument(*app, f->model);
  auto data = std::make_shared<DataFlags>(*app);
  app->add_option("--from", f->from, "index of the first example")->capture_default_str();
  app->add_option("--to", f->to, "index of the last example")->capture_default_str();
  app->add_option("--steps", f->steps, "points on the path, both ends included")->capture_default_str();
  app->add_flag("--slerp", f->slerp, "spherical interpolation (keeps the norm typical of the prior)");
  app->add_option("--out", f->out, "a .png strip; the decoded path is also written as .npy beside it")->required();
  auto label = std::make_shared<LabelFlag>(*app, "conditional models: the class the path is decoded as (default: "
                                                 "the first example's; each end is encoded with its own label)");
  auto overwrite = std::make_shared<OverwriteFlag>(*app);
  add_config_flag(*app);
  return {app, [f, data, label, overwrite] {
            check_extension("--out", f->out, {".png", ".npy"});
            const std::size_t steps = parse_count_flag("--steps", f->steps, 2, 1000);
            LoadedModel m = load_model(f->model);
            // --out as given (strip.PNG stays strip.PNG), its twin beside it.
            const std::filesystem::path out = f->out;
            const std::string extension = extension_of(out);
            const std::filesystem::path npy = extension == ".npy" ? out : std::filesystem::path(out).replace_extension(".npy");
            const std::filesystem::path png = extension == ".png" ? out : std::filesystem::path(out).replace_extension(".png");
            const bool images = image_shape(m.example.shape).has_value();
            const datasets::Dataset d = data->load(m);
            const std::size_t from = parse_count_flag("--from", f->from, 0, d.size() - 1);
            const std::size_t to = parse_count_flag("--to", f->to, 0, d.size() - 1);
            overwrite->claim(npy);
            if (images) overwrite->claim(png);
            ag::Array ends({2, d.features()});
            d.row_to_floats(from, &ends(0, 0));
            d.row_to_floats(to, &ends(1, 0));
            const std::vector<std::int32_t> labels = label->of(*m.model, d, data->describe());
            const std::vector<std::int32_t> end_labels =
                labels.empty() ? labels : std::vector<std::int32_t>{labels[from], labels[to]};
            ag::Tape tape;
            ag::NoGradGuard no_grad(tape);
            ag::Var y = m.model->labels_on(tape, end_labels);
            const ag::Array mu = m.model->encode(tape.constant(ends), y).mu.value();
            const std::size_t z = mu.shape()[1];
            double dot = 0, na = 0, nb = 0;
            for (std::size_t j = 0; j < z; ++j) {
              dot += mu(0, j) * mu(1, j);
              na += mu(0, j) * mu(0, j);
              nb += mu(1, j) * mu(1, j);
            }
            const double omega = std::acos(std::clamp(dot / std::sqrt(na * nb + 1e-30), -1.0, 1.0));
            ag::Array path({steps, z});
            for (std::size_t s = 0; s < steps; ++s) {
              const double t = static_cast<double>(s) / static_cast<double>(steps - 1);
              double wa = 1 - t, wb = t;
              if (f->slerp && std::sin(omega) > 1e-6) {
                wa = std::sin((1 - t) * omega) / std::sin(omega);
                wb = std::sin(t * omega) / std::sin(omega);
              }
              for (std::size_t j = 0; j < z; ++j) path(s, j) = static_cast<float>(wa * mu(0, j) + wb * mu(1, j));
            }
            const ag::Array x =
                m.model->decoded(path, end_labels.empty() ? end_labels : std::vector<std::int32_t>(steps, end_labels[0]));
            write_array(npy, x, m.example);
            if (images) write_array(png, x, m.example, steps);
            fmt::print("interpolate: {} -> {} in {} steps{} in {}\n", from, to, steps, f->slerp ? " (slerp)" : "", f->out);
          }};
}

}  // namespace tools
