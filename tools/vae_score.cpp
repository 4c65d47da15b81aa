// vae score CKPT --data D --out scores.csv: each example's negative ELBO (or IWAE bound) as
// an anomaly score, with an optional threshold from held-out data and the AUROC for
// telling given classes apart.
#include <algorithm>
#include <cmath>
#include <memory>
#include <numbers>
#include <set>

#include <fmt/format.h>

#include "datasets/source.hpp"
#include "tools/command.hpp"
#include "tools/scoring.hpp"
#include "tools/streams.hpp"
#include "tools/training_data.hpp"

namespace tools {
namespace {

std::vector<double> scores_of(Model& model, const LabelFlag& label, const datasets::Dataset& d,
                              const std::string& source, std::size_t iwae, std::uint64_t seed) {
  const std::vector<std::int32_t> labels = label.of(model, d, source);
  if (iwae > 0) return iwae_nll(model, d, labels, iwae, stream_seed(seed, kCommand));
  const ElboTerms t = elbo_terms(model, d, labels, stream_seed(seed, kCommand), 500);
  std::vector<double> s(t.reconstruction.size());
  for (std::size_t i = 0; i < s.size(); ++i) s[i] = t.reconstruction[i] + t.kl[i];
  return s;
}

}  // namespace

Command add_score_command(CLI::App& vae) {
  struct Flags {
    std::string model, out, iwae = "0", seed = "1", heldout, percentile = "99", anomaly_classes;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* app = vae.add_subcommand("score", "per-example negative ELBO (or IWAE bound): anomaly scores");
  add_model_argument(*app, f->model);
  auto data = std::make_shared<DataFlags>(*app);
  app->add_option("--iwae", f->iwae, "score with the importance-weighted bound over K samples (0: the ELBO)")
      ->capture_default_str();
  app->add_option("--seed", f->seed, "seed of the latent draws")->capture_default_str();
  app->add_option("--out", f->out, "CSV: index,label,score_nats,bits_per_dim[,anomalous]")->required();
  app->add_option("--threshold-from", f->heldout, "data of normal examples: the threshold is their --percentile");
  app->add_option("--percentile", f->percentile, "percentile of the held-out scores used as threshold (linear between ranks, as numpy.percentile)")
      ->capture_default_str();
  app->add_option("--anomaly-classes", f->anomaly_classes, "labels that count as anomalies: prints the AUROC");
  auto label = std::make_shared<LabelFlag>(*app, "conditional models: score every example as this class (default: its label)");
  auto overwrite = std::make_shared<OverwriteFlag>(*app);
  add_config_flag(*app);
  return {app, [f, data, label, overwrite] {
            check_extension("--out", f->out, {".csv"});
            overwrite->claim(f->out);
            const std::size_t iwae = parse_count_flag("--iwae", f->iwae, 0, 100'000);
            const std::uint64_t seed = parse_count_flag("--seed", f->seed, 0, std::numeric_limits<std::uint64_t>::max());
            const double percentile_rank = parse_real_flag("--percentile", f->percentile, 0, 100);
            const std::vector<std::size_t> classes =
                f->anomaly_classes.empty() ? std::vector<std::size_t>{}
                                           : parse_list_flag("--anomaly-classes", f->anomaly_classes, 0, 1'000'000);
            LoadedModel m = load_model(f->model);
            const datasets::Dataset d = data->load(m);
            if (!classes.empty() && !d.has_labels())
              throw FlagError(fmt::format("--anomaly-classes: {} has no labels", data->describe()));
            const std::set<std::int64_t> positive_set(classes.begin(), classes.end());
            std::vector<bool> positive(classes.empty() ? 0 : d.size());
            for (std::size_t i = 0; i < positive.size(); ++i) positive[i] = positive_set.count(d.label(i)) > 0;
            const auto anomalies = static_cast<std::size_t>(std::count(positive.begin(), positive.end(), true));
            if (!classes.empty() && (anomalies == 0 || anomalies == d.size()))  // before the scores are computed
              throw FlagError(fmt::format("--anomaly-classes: {} of the {} examples of {} are of classes {}; the AUROC "
                                          "needs anomalies and normal examples both",
                                          anomalies == 0 ? "none" : "all", d.size(), data->describe(),
                                          fmt::join(classes, ",")));
            const std::vector<double> scores = scores_of(*m.model, *label, d, data->describe(), iwae, seed);
            const double per_bit = static_cast<double>(d.features()) * std::numbers::ln2;
            std::optional<double> threshold;
            if (!f->heldout.empty()) {
              std::vector<double> normal = scores_of(*m.model, *label, data->load_other(f->heldout, m),
                                                          f->heldout + " (--threshold-from)", iwae, seed);
              std::sort(normal.begin(), normal.end());
              // (the nearest rank, as it was, made the 99th of 16 scores their largest: numpy's is between)
              threshold = percentile(normal, percentile_rank);
              fmt::print("threshold: {:.3f} nats, the {}th percentile of {} held-out scores\n", *threshold,
                         percentile_rank, normal.size());
            }
            std::string csv = std::string("index,label,score_nats,bits_per_dim") + (threshold ? ",anomalous\n" : "\n");
            std::size_t flagged = 0;
            for (std::size_t i = 0; i < scores.size(); ++i) {
              csv += fmt::format("{},{},{:.6f},{:.6f}", i, d.has_labels() ? std::to_string(d.label(i)) : "",
                                 scores[i], scores[i] / per_bit);
              if (threshold) {
                const bool anomalous = scores[i] > *threshold;
                flagged += anomalous;
                csv += anomalous ? ",1" : ",0";
              }
              csv += '\n';
            }
            write_text(f->out, csv);
            double mean = 0;
            for (double s : scores) mean += s / static_cast<double>(scores.size());
            fmt::print("score: {} examples, mean {:.4f} nats ({:.4f} bits/dim){} in {}\n", scores.size(), mean,
                       mean / per_bit, iwae ? fmt::format(", IWAE K={}", iwae) : "", f->out);
            if (threshold) fmt::print("anomalous: {} of {}\n", flagged, scores.size());
            if (!classes.empty())
              fmt::print("AUROC {:.4f} for classes {} against the rest\n", auroc(scores, positive),
                         fmt::join(classes, ","));
          }};
}

}  // namespace tools
