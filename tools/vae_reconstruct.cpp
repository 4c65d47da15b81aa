// vae reconstruct CKPT --data D --out F [--noise KIND:LEVEL]: reconstructions through the
// posterior mean; with --noise the examples are corrupted first (the denoising use), and
// the MSE and PSNR of noisy vs clean and reconstructed vs clean are printed.
#include <algorithm>
#include <cmath>
#include <memory>

#include <fmt/format.h>

#include "tools/command.hpp"
#include "tools/streams.hpp"

namespace tools {
namespace {

struct Noise {
  std::string kind;  // "", gaussian, mask, saltpepper
  double level = 0;
};

Noise parse_noise(const std::string& text) {
  if (text.empty()) return {};
  const auto colon = text.find(':');
  const std::string kind = text.substr(0, colon);
  if (colon == std::string::npos || (kind != "gaussian" && kind != "mask" && kind != "saltpepper"))
    throw FlagError(fmt::format("--noise: '{}' is not gaussian:SIGMA, mask:P or saltpepper:P", text));
  return {kind, parse_real_flag("--noise " + kind, text.substr(colon + 1), 0, kind == "gaussian" ? 10 : 1)};
}

// Gaussian: x + N(0, sigma^2), kept in [0, 1]; mask: each value 0 with probability p;
// salt and pepper: each value 0 or 1 (even odds) with probability p.
void corrupt(ag::Array& x, const Noise& noise, ag::Rng& rng) {
  for (float& v : x) {
    if (noise.kind == "gaussian") v = std::clamp(v + static_cast<float>(noise.level) * rng.normal(), 0.0F, 1.0F);
    else if (noise.kind == "mask" && rng.uniform() < noise.level) v = 0.0F;
    else if (noise.kind == "saltpepper" && rng.uniform() < noise.level) v = rng.uniform() < 0.5F ? 0.0F : 1.0F;
  }
}

double mse(const ag::Array& a, const ag::Array& b) {
  double total = 0;
  for (std::size_t i = 0; i < a.size(); ++i) total += std::pow(static_cast<double>(a.data()[i]) - b.data()[i], 2);
  return total / static_cast<double>(a.size());
}

// Peak signal-to-noise ratio for values in [0, 1].
double psnr(double mse_value) { return 10.0 * std::log10(1.0 / mse_value); }

}  // namespace

Command add_reconstruct_command(CLI::App& vae) {
  struct Flags {
    std::string model, out, noise, seed = "1", picture;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* app = vae.add_subcommand("reconstruct", "reconstructions through the posterior mean; with --noise, "
                                                    "denoising (prints MSE and PSNR)");
  add_model_argument(*app, f->model);
  auto data = std::make_shared<DataFlags>(*app);
  app->add_option("--out", f->out, "reconstructions: .npy, .idx or .csv")->required();
  app->add_option("--noise", f->noise, "corrupt first: gaussian:SIGMA, mask:P or saltpepper:P");
  app->add_option("--seed", f->seed, "seed of the noise")->capture_default_str();
  app->add_option("--picture", f->picture, "PNG of clean / noisy / reconstructed rows (default: --out as .png)");
  auto label = std::make_shared<LabelFlag>(*app, "conditional models: reconstruct every example as this class "
                                                 "(default: its label)");
  auto overwrite = std::make_shared<OverwriteFlag>(*app);
  add_config_flag(*app);
  return {app, [f, data, label, overwrite] {
            check_extension("--out", f->out, {".npy", ".idx", ".gz", ".csv"});
            if (!f->picture.empty()) check_extension("--picture", f->picture, {".png"});  // (never --out's name)
            const Noise noise = parse_noise(f->noise);
            const std::uint64_t seed = parse_count_flag("--seed", f->seed, 0, std::numeric_limits<std::uint64_t>::max());
            LoadedModel m = load_model(f->model);
            const std::optional<ImageShape> shape = image_shape(m.example.shape);
            std::filesystem::path picture = f->picture;
            if (picture.empty()) picture = std::filesystem::path(f->out).replace_extension(".png");
            overwrite->claim(f->out);
            if (shape) overwrite->claim(picture);
            const datasets::Dataset d = data->load(m);
            const std::vector<std::int32_t> labels = label->of(*m.model, d, data->describe());
            const ag::Array clean = rows_of(d, 0, d.size());
            if (!noise.kind.empty()) {  // corrupt() keeps values in [0, 1]
              const auto [lo, hi] = std::minmax_element(clean.begin(), clean.end());
              if (*lo < 0.0F || *hi > 1.0F)
                throw FlagError(fmt::format("--noise: made for pixels in [0, 1], but the examples of {} lie in "
                                            "[{}, {}]: the noisy copies would be clipped to [0, 1]",
                                            data->describe(), *lo, *hi));
            }
            ag::Array noisy = clean;
            ag::Rng rng(stream_seed(seed, kCommand));
            corrupt(noisy, noise, rng);
            ag::Array recon(clean.shape());
            ag::Tape tape;
            ag::NoGradGuard no_grad(tape);
            for (std::size_t begin = 0; begin < d.size(); begin += 500) {
              const std::size_t end = std::min(d.size(), begin + 500);
              tape.reset();
              ag::Array part = xt::view(noisy, xt::range(begin, end), xt::all());
              ag::Var y = m.model->labels_on(tape, label_rows(labels, begin, end));
              xt::view(recon, xt::range(begin, end), xt::all()) = m.model->reconstruct(tape.constant(part), y).value();
            }
            write_array(f->out, recon, m.example);
            if (!noise.kind.empty())
              fmt::print("noisy vs clean:         MSE {:.6f}  PSNR {:.2f} dB\n", mse(noisy, clean), psnr(mse(noisy, clean)));
            fmt::print("reconstructed vs clean: MSE {:.6f}  PSNR {:.2f} dB\n", mse(recon, clean), psnr(mse(recon, clean)));
            if (!shape) return;
            // Up to 16 examples: clean, noisy (with --noise), reconstructed, one row each.
            const std::size_t n = std::min<std::size_t>(16, d.size()), rows = noise.kind.empty() ? 2 : 3;
            ag::Array grid({rows * n, d.features()});
            for (std::size_t i = 0; i < n; ++i) {
              xt::view(grid, i, xt::all()) = xt::view(clean, i, xt::all());
              if (rows == 3) xt::view(grid, n + i, xt::all()) = xt::view(noisy, i, xt::all());
              xt::view(grid, (rows - 1) * n + i, xt::all()) = xt::view(recon, i, xt::all());
            }
            const bool drawn = write_image_grid(picture, grid, *shape, n);  // (else a warning says why not)
            fmt::print("reconstruct: {} examples in {}{}\n", d.size(), f->out,
                       drawn ? ", picture " + picture.string() : "");
          }};
}

}  // namespace tools
