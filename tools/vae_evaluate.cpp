// vae evaluate CKPT --data D: the negative ELBO split into reconstruction and KL, and with
// --iwae K the importance-weighted NLL, of a trained model on a dataset.
#include <memory>
#include <numbers>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tools/command.hpp"
#include "tools/scoring.hpp"
#include "tools/streams.hpp"

namespace tools {

Command add_evaluate_command(CLI::App& vae) {
  struct Flags {
    std::string model, json, iwae = "0", seed = "1";
  };
  auto f = std::make_shared<Flags>();
  CLI::App* app = vae.add_subcommand("evaluate", "negative ELBO (reconstruction + KL) and IWAE NLL on a dataset");
  add_model_argument(*app, f->model);
  auto data = std::make_shared<DataFlags>(*app);
  app->add_option("--iwae", f->iwae, "also the importance-weighted NLL with K samples (0: skip)")->capture_default_str();
  app->add_option("--seed", f->seed, "seed of the latent draws (the same as vae score's)")->capture_default_str();
  app->add_option("--json", f->json, "also write the figures to this JSON file");
  auto label = std::make_shared<LabelFlag>(*app, "conditional models: evaluate every example as this class (default: its label)");
  auto overwrite = std::make_shared<OverwriteFlag>(*app);
  add_config_flag(*app);
  return {app, [f, data, label, overwrite] {
            const std::size_t iwae = parse_count_flag("--iwae", f->iwae, 0, 100'000);
            const std::uint64_t seed = parse_count_flag("--seed", f->seed, 0, std::numeric_limits<std::uint64_t>::max());
            if (!f->json.empty()) overwrite->claim(f->json);
            LoadedModel m = load_model(f->model);
            const datasets::Dataset d = data->load(m);
            const std::vector<std::int32_t> labels = label->of(*m.model, d, data->describe());
            const ElboTerms t = elbo_terms(*m.model, d, labels, stream_seed(seed, kCommand), 500);
            double recon = 0, kl = 0;
            for (std::size_t i = 0; i < d.size(); ++i) {
              recon += t.reconstruction[i];
              kl += t.kl[i];
            }
            recon /= static_cast<double>(d.size());
            kl /= static_cast<double>(d.size());
            nlohmann::json out = {{"examples", d.size()}, {"split", data->options().split}, {"neg_elbo", recon + kl},
                                  {"reconstruction", recon}, {"kl", kl}};
            fmt::print("{} examples ({} split): negative ELBO {:.4f} nats = reconstruction {:.4f} + KL {:.4f}\n", d.size(),
                       data->options().split, recon + kl, recon, kl);
            if (iwae > 0) {
              double nll = 0;
              for (double v : iwae_nll(*m.model, d, labels, iwae, stream_seed(seed, kCommand))) nll += v;
              nll /= static_cast<double>(d.size());
              fmt::print("NLL <= {:.4f} nats (importance-weighted bound, K={}), {:.4f} bits/dim\n", nll, iwae,
                         nll / (static_cast<double>(d.features()) * std::numbers::ln2));
              out["iwae_k"] = iwae;
              out["nll_iwae"] = nll;
            }
            if (!f->json.empty()) write_text(f->json, out.dump(2) + "\n");
          }};
}

}  // namespace tools
