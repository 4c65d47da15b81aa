// vae encode CKPT --data D --out F: the posterior mean and log-variance of every example.
#include <memory>

#include <fmt/format.h>
#include <xtensor/xnpy.hpp>

#include "tools/command.hpp"

namespace tools {

Command add_encode_command(CLI::App& vae) {
  struct Flags {
    std::string model, out;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* app = vae.add_subcommand("encode", "posterior mean and log-variance of every example (+ its label)");
  add_model_argument(*app, f->model);
  auto data = std::make_shared<DataFlags>(*app);
  app->add_option("--out", f->out, "output: .npy ([N, 2Z]; labels in <stem>-labels.npy) or .csv (with a header)")
      ->required();
  auto label = std::make_shared<LabelFlag>(*app, "conditional models: encode every example as this class "
                                                 "(default: its label)");
  auto overwrite = std::make_shared<OverwriteFlag>(*app);
  add_config_flag(*app);
  return {app, [f, data, label, overwrite] {
            check_extension("--out", f->out, {".npy", ".csv"});
            const std::filesystem::path out = f->out;
            const std::filesystem::path labels_out = out.parent_path() / (out.stem().string() + "-labels.npy");
            overwrite->claim(out);
            LoadedModel m = load_model(f->model);
            const datasets::Dataset d = data->load(m);
            if (d.has_labels() && extension_of(out) != ".csv") overwrite->claim(labels_out);
            const std::vector<std::int32_t> labels = label->of(*m.model, d, data->describe());
            const std::size_t z = m.model->config().latent;
            ag::Array codes({d.size(), 2 * z + (d.has_labels() ? 1 : 0)});
            ag::Tape tape;
            ag::NoGradGuard no_grad(tape);
            for (std::size_t begin = 0; begin < d.size(); begin += 500) {
              const std::size_t end = std::min(d.size(), begin + 500);
              tape.reset();
              ag::Var y = m.model->labels_on(tape, label_rows(labels, begin, end));
              const models::Vae::Posterior q = m.model->encode(tape.constant(rows_of(d, begin, end)), y);
              for (std::size_t i = begin; i < end; ++i)
                for (std::size_t j = 0; j < z; ++j) {
                  codes(i, j) = q.mu.value()(i - begin, j);
                  codes(i, z + j) = q.logvar.value()(i - begin, j);
                }
            }
            std::vector<std::string> columns;
            for (std::size_t j = 0; j < z; ++j) columns.push_back(fmt::format("mu{}", j));
            for (std::size_t j = 0; j < z; ++j) columns.push_back(fmt::format("logvar{}", j));
            if (d.has_labels() && extension_of(out) == ".csv") {
              columns.emplace_back("label");
              for (std::size_t i = 0; i < d.size(); ++i) codes(i, 2 * z) = static_cast<float>(d.label(i));
              write_array(out, codes, {.shape = {codes.shape()[1]}}, 8, columns);
            } else {
              ag::Array means = xt::view(codes, xt::all(), xt::range(0, 2 * z));
              write_array(out, means, {.shape = {2 * z}}, 8, columns);
              if (d.has_labels()) {
                xt::xarray<std::int32_t> labels = xt::adapt(std::vector<std::int32_t>(d.labels().begin(), d.labels().end()));
                write_text(labels_out, xt::dump_npy(labels));
              }
            }
            fmt::print("encode: {} examples -> {} latent means and log-variances in {}\n", d.size(), z, f->out);
          }};
}

}  // namespace tools
