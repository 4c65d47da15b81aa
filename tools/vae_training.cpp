#include "tools/vae_training.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "autograd/kernels/parallel.hpp"
#include "datasets/dataset.hpp"
#include "datasets/error.hpp"
#include "datasets/loader.hpp"
#include "nn/atomic_file.hpp"
#include "nn/checkpoint.hpp"
#include "optim/adam.hpp"
#include "tools/pictures.hpp"
#include "tools/progress.hpp"

namespace tools {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr const char* kCheckpointFormat = "vae-autograd/training-checkpoint/1";
constexpr const char* kModelFormat = "vae-autograd/model/1";
constexpr const char* kOptimizerPrefix = "optimizer.";
constexpr const char* kCsvHeader = "epoch,train_loss,test_loss,recon,kl,seconds,beta\n";

const std::vector<std::string> kFashionNames = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

// Each use of randomness draws from its own stream, so that (for instance) evaluating does
// not shift the training noise, and each can be saved and restored on its own. Streams are
// seeded by hashing (seed, stream), so no two coincide for any --seed.
enum Stream : std::uint64_t { kInit = 1, kNoise, kShuffle, kEvaluation, kPictures, kIwae, kTestBinarize };

std::uint64_t stream_seed(std::uint64_t seed, std::uint64_t stream, std::uint64_t index = 0) {
  return ag::splitmix64(ag::splitmix64(ag::splitmix64(seed) ^ stream) ^ index);
}

struct Generators {
  ag::Rng init, noise;
  explicit Generators(std::uint64_t seed) : init(stream_seed(seed, kInit)), noise(stream_seed(seed, kNoise)) {}
};

struct EvalResult {
  double loss = 0, recon = 0, kl = 0;  // per example, nats
};

std::string exact(double v) { return fmt::format("{:a}", v); }  // hex float: round-trips exactly

double parse_exact(const std::string& text, const std::string& what) {
  try {
    std::size_t used = 0;
    const double v = std::stod(text, &used);
    if (used == text.size()) return v;
  } catch (const std::logic_error&) {
  }
  throw std::invalid_argument(fmt::format("checkpoint: '{}' is not a number: '{}'", what, text));
}

void write_text_atomically(const fs::path& path, const std::string& text) {
  nn::write_file_atomically(path, [&](const nn::ByteSink& write) { write(text.data(), text.size()); });
}

std::string join_sizes(const std::vector<std::size_t>& v) {
  return v.empty() ? "none" : fmt::format("{}", fmt::join(v, ","));
}

// The options a checkpoint pins: a resumed run must use the same ones to continue the
// same computation.
std::map<std::string, std::string> pinned_options(const TrainOptions& o) {
  return {{"batch", std::to_string(o.batch)},         {"lr", exact(o.lr)},
          {"hidden", join_sizes(o.hidden)},            {"latent", std::to_string(o.latent)},
          {"decoder", models::to_string(o.decoder)},   {"beta", exact(o.beta)},
          {"kl-warmup", exact(o.kl_warmup)},           {"binarize", o.binarize ? "1" : "0"},
          {"seed", std::to_string(o.seed)},            {"limit", std::to_string(o.limit)}};
}

// ---- data ----

datasets::Dataset load_split(const TrainOptions& o, const char* split, std::size_t limit) {
  if (!fs::exists(o.data)) {
    const bool is_default = o.data == fs::path(kDefaultDataDir);
    throw datasets::DataError(fmt::format(
        "dataset folder {} does not exist. {}", o.data.string(),
        is_default ? "Install Fashion-MNIST with `apt-get install dataset-fashion-mnist` (or run "
                     "`bash scripts/install-deps.sh`), or point --data at a folder of IDX files"
                   : "Point --data at a folder holding train-images-idx3-ubyte[.gz] and "
                     "t10k-images-idx3-ubyte[.gz] (labels optional)"));
  }
  datasets::Dataset d = datasets::load_idx_dataset(o.data, split, limit == 0 ? datasets::kAllExamples : limit);
  if (d.size() == 0)
    throw datasets::DataError(fmt::format("{}: the {} split has no examples", o.data.string(), split));
  // Bernoulli likelihoods need targets in [0, 1]: bytes are scaled there, floats must be.
  if (o.decoder == models::Decoder::bernoulli && !d.holds_bytes()) {
    const auto [lo, hi] = std::minmax_element(d.floats().begin(), d.floats().end());
    if (*lo < 0.0F || *hi > 1.0F)
      throw datasets::DataError(fmt::format(
          "{}: the {} split has values in [{}, {}], outside the [0, 1] a Bernoulli decoder "
          "models; use --decoder gaussian or gaussian-learned",
          o.data.string(), split, *lo, *hi));
  }
  return d;
}

std::map<std::string, std::string> pinned_from(const nn::SafetensorsFile& file) {
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : file.metadata())
    if (key.rfind("option.", 0) == 0) out[key.substr(7)] = value;
  return out;
}

void apply_pinned(const nn::SafetensorsFile& file, TrainOptions& o) {
  auto get = [&](const char* key) { return file.metadata_value(std::string("option.") + key); };
  const std::string where = fmt::format("checkpoint {} option", file.source());
  o.batch = models::parse_count(get("batch"), where + " 'batch'");
  o.lr = parse_exact(get("lr"), "lr");
  o.hidden = models::parse_widths(get("hidden"), where + " 'hidden'");
  o.latent = models::parse_count(get("latent"), where + " 'latent'");
  o.decoder = models::parse_decoder(get("decoder"));
  o.beta = parse_exact(get("beta"), "beta");
  o.kl_warmup = parse_exact(get("kl-warmup"), "kl-warmup");
  o.binarize = get("binarize") == "1";
  o.seed = models::parse_count(get("seed"), where + " 'seed'");
  o.limit = models::parse_count(get("limit"), where + " 'limit'");
}


// Reads a checkpoint's pinned options into `o`: a resumed run must continue the same
// computation, so an explicit flag that contradicts the checkpoint is an error.
void resolve_resume(const nn::SafetensorsFile& file, TrainOptions& o) {
  const nn::Metadata& m = file.metadata();
  auto format = m.find("format");
  if (format == m.end() || format->second != kCheckpointFormat)
    throw std::invalid_argument(fmt::format(
        "--resume: {} is not a training checkpoint (format '{}'); resume from the "
        "checkpoint.safetensors that train_vae writes beside model.safetensors",
        file.source(), format == m.end() ? "none" : format->second));
  const auto saved = pinned_from(file);
  for (const auto& [key, value] : pinned_options(o)) {
    auto it = saved.find(key);
    if (it == saved.end())
      throw std::invalid_argument(fmt::format("--resume: {} lacks option '{}'", file.source(), key));
    const bool given = std::find(o.given.begin(), o.given.end(), key) != o.given.end();
    if (given && it->second != value)
      throw std::invalid_argument(fmt::format(
          "--{} {} contradicts the checkpoint {}, which was trained with --{} {}; drop the flag "
          "to continue that run",
          key, value, file.source(), key, it->second));
  }
  apply_pinned(file, o);
}

// ---- the run ----

class Run {
 public:
  explicit Run(TrainOptions options)
      : o_(std::move(options)),
        train_(load_split(o_, "train", o_.limit)),
        test_(load_split(o_, "t10k", 0)),
        gen_(o_.seed),
        vae_(config(), gen_.init),
        adam_(vae_.parameters(), {.lr = o_.lr}),
        loader_(train_, {.batch_size = o_.batch, .shuffle = true, .binarize = o_.binarize,
                                .seed = stream_seed(o_.seed, kShuffle)}) {
    if (test_.features() != train_.features())
      throw datasets::DataError(fmt::format("{}: test examples have {} features, training examples {}",
                                            o_.data.string(), test_.features(), train_.features()));
    fs::create_directories(o_.out);
  }

  void run() {
    fmt::print("train_vae: {} training / {} test examples of {} features from {}\n", train_.size(),
               test_.size(), train_.features(), o_.data.string());
    fmt::print("model: {} ({} parameters), Adam lr {}, batch {}, beta {}{}, {} thread(s)\n",
               vae_.describe(), vae_.num_parameters(), o_.lr, o_.batch, o_.beta,
               o_.kl_warmup > 0 ? fmt::format(" (warm-up over {} epochs)", o_.kl_warmup) : "",
               ag::num_threads());
    for (std::size_t epoch = epochs_done_ + 1; epoch <= o_.epochs; ++epoch) train_epoch(epoch);
    if (epochs_done_ == 0) throw std::invalid_argument("--epochs: nothing to train (0 epochs)");
    write_pictures();
    write_results();
  }

 private:
  models::VaeConfig config() const {
    models::VaeConfig c;
    c.input_dim = train_.features();
    c.hidden = o_.hidden;
    c.latent = o_.latent;
    c.decoder = o_.decoder;
    return c;
  }

  // The test set in order; with --binarize it is binarized too (the likelihood the model was
  // trained for), with the same draw at every evaluation.
  datasets::Loader test_loader(std::size_t batch) const {
    return datasets::Loader(test_, {.batch_size = batch, .shuffle = false, .binarize = o_.binarize,
                                    .seed = stream_seed(o_.seed, kTestBinarize)});
  }

  double beta_at(std::size_t step_in_run) const {
    if (o_.kl_warmup <= 0) return o_.beta;
    const double epochs = static_cast<double>(step_in_run) / static_cast<double>(loader_.batches_per_epoch());
    return o_.beta * std::min(1.0, epochs / o_.kl_warmup);
  }

  void train_epoch(std::size_t epoch) {
    const auto start = Clock::now();
    loader_.start_epoch();
    ProgressBar bar(fmt::format("epoch {}/{}", epoch, o_.epochs), loader_.batches_per_epoch(),
                    o_.progress && stderr_is_terminal());
    double total = 0;
    std::size_t seen = 0, step = 0;
    double beta = o_.beta;
    while (loader_.next()) {
      ++step;
      beta = beta_at((epoch - 1) * loader_.batches_per_epoch() + step);
      const float value = train_step(tape_, vae_, adam_, loader_.batch(), gen_.noise, static_cast<float>(beta));
      if (!std::isfinite(value))
        throw TrainingDiverged(fmt::format(
            "the loss became {} at epoch {}, step {} (lr {}); training stopped. {}; try a smaller --lr",
            value, epoch, step, o_.lr,
            epochs_done_ == 0 ? std::string("No checkpoint was written by this run")
                              : fmt::format("The last good checkpoint, after epoch {}, is {}", epochs_done_,
                                            (o_.out / "checkpoint.safetensors").string())));
      const std::size_t rows = loader_.batch().shape()[0];
      total += static_cast<double>(value) * static_cast<double>(rows);
      seen += rows;
      bar.update(step, total / static_cast<double>(seen), seen);
    }
    bar.finish();
    const double train_seconds = std::chrono::duration<double>(Clock::now() - start).count();
    const EvalResult test = evaluate(epoch);
    epochs_done_ = epoch;
    metrics_ += fmt::format("{},{:.4f},{:.4f},{:.4f},{:.4f},{:.3f},{:.6g}\n", epoch, total / static_cast<double>(seen),
                            test.loss, test.recon, test.kl, train_seconds, beta);
    last_test_ = test;
    fmt::print("epoch {:>3}/{}  train {:.3f}  test {:.3f} (recon {:.3f} + kl {:.3f})  {:.2f} s  {:.0f} img/s\n",
               epoch, o_.epochs, total / static_cast<double>(seen), test.loss, test.recon, test.kl,
               train_seconds, static_cast<double>(seen) / train_seconds);
    std::fflush(stdout);
    save();
  }

  // The negative ELBO on the test set (beta = 1 whatever the training beta), one z per image
  // from a generator seeded by the epoch, so the figure does not depend on the run's history.
  EvalResult evaluate(std::size_t epoch) {
    ag::Rng rng(stream_seed(o_.seed, kEvaluation, epoch));
    datasets::Loader loader = test_loader(o_.eval_batch);
    loader.start_epoch();
    EvalResult r;
    ag::NoGradGuard no_grad(tape_);
    while (loader.next()) {
      tape_.reset();
      models::VaeLoss l = vae_.loss(tape_.constant(loader.batch()), rng, 1.0F);
      const double rows = static_cast<double>(loader.batch().shape()[0]);
      r.recon += l.reconstruction.item() * rows;
      r.kl += l.kl.item() * rows;
    }
    const double n = static_cast<double>(test_.size());
    r.recon /= n;
    r.kl /= n;
    r.loss = r.recon + r.kl;
    return r;
  }

  nn::Metadata model_metadata() const {
    nn::Metadata m = vae_.config().to_metadata();
    m["format"] = kModelFormat;
    m["epochs"] = std::to_string(epochs_done_);
    m["test_loss"] = fmt::format("{:.4f}", last_test_.loss);
    return m;
  }

  // Two files each epoch, each written atomically: model.safetensors (weights only, for
  // PyTorch and for sampling) and checkpoint.safetensors (also what resuming needs).
  void save() {
    nn::save_module(o_.out / "model.safetensors", vae_, model_metadata());

    nn::Metadata m = model_metadata();
    m["format"] = kCheckpointFormat;
    for (const auto& [key, value] : pinned_options(o_)) m["option." + key] = value;
    m["noise_rng"] = gen_.noise.state();
    m["loader"] = loader_.state();
    m["metrics"] = metrics_;
    const optim::OptimizerState state = adam_.state();
    for (const auto& [key, value] : state.scalars) m[kOptimizerPrefix + key] = exact(value);
    std::vector<nn::TensorEntry> extra;
    for (const auto& [key, array] : state.arrays)
      extra.emplace_back(kOptimizerPrefix + key, std::vector<std::size_t>{array.shape()[0], array.shape()[1]}, array);
    nn::save_module(o_.out / "checkpoint.safetensors", vae_, m, extra);
    write_text_atomically(o_.out / "metrics.csv", kCsvHeader + metrics_);
  }

 public:
  /// Restores weights, optimizer, generators, loader position and metrics from a checkpoint
  /// whose pinned options were already applied (see resolve_resume).
  void restore(const nn::SafetensorsFile& file) {
    const nn::Metadata& m = file.metadata();
    nn::load_module(file, vae_, {kOptimizerPrefix});
    optim::OptimizerState state;
    for (const auto& [key, value] : m)
      if (key.rfind(kOptimizerPrefix, 0) == 0)
        state.scalars[key.substr(std::string(kOptimizerPrefix).size())] = parse_exact(value, key);
    for (const std::string& name : file.names())
      if (name.rfind(kOptimizerPrefix, 0) == 0)
        state.arrays[name.substr(std::string(kOptimizerPrefix).size())] = file.get(name).to_array();
    adam_.load_state(state);
    gen_.noise.set_state(file.metadata_value("noise_rng"));
    loader_.set_state(file.metadata_value("loader"));
    metrics_ = file.metadata_value("metrics");
    epochs_done_ = models::parse_count(file.metadata_value("epochs"), "checkpoint metadata 'epochs'");
    if (epochs_done_ >= o_.epochs)
      throw std::invalid_argument(fmt::format(
          "{} has already trained {} epochs; pass --epochs greater than {} to continue", file.source(),
          epochs_done_, epochs_done_));
    fmt::print("resuming {} after epoch {}\n", file.source(), epochs_done_);
  }

 private:
  void write_pictures() {
    std::vector<std::string> written;
    const std::size_t side = pictures::square_side(train_.features());
    if (side != 0) {
      write_image_pictures(side);
      written = {"samples.png", "reconstructions.png"};
    }
    if (o_.latent == 2) {
      write_latent_scatter();
      written.emplace_back("latent.png");
      if (side != 0) {
        write_manifold(side);
        written.emplace_back("manifold.png");
      }
    }
    if (side == 0)
      fmt::print("pictures: {} features are not a square image, so no image grids\n", train_.features());
    if (!written.empty()) fmt::print("pictures: {} in {}\n", fmt::join(written, ", "), o_.out.string());
  }

  void write_image_pictures(std::size_t side) {
    ag::NoGradGuard no_grad(tape_);
    ag::Rng rng(stream_seed(o_.seed, kPictures));
    tape_.reset();
    pictures::write_grid((o_.out / "samples.png").string(), vae_.sample(tape_, 64, rng).value(), side, side, 8);

    // Up to 32 test images in rows of up to 16, each row above its reconstructions.
    const std::size_t n = std::min<std::size_t>(32, test_.size()), d = test_.features();
    const std::size_t per_row = std::min<std::size_t>(16, n), rows = (n + per_row - 1) / per_row;
    ag::Array originals({n, d});
    for (std::size_t i = 0; i < n; ++i) test_.row_to_floats(i, &originals(i, 0));
    tape_.reset();
    const ag::Array recon = vae_.reconstruct(tape_.constant(originals)).value();
    ag::Array grid = xt::zeros<float>({2 * rows * per_row, d});
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t top = (i / per_row) * 2 * per_row + i % per_row;
      for (std::size_t j = 0; j < d; ++j) {
        grid(top, j) = originals(i, j);
        grid(top + per_row, j) = recon(i, j);
      }
    }
    pictures::write_grid((o_.out / "reconstructions.png").string(), grid, side, side, per_row);
  }

  // Posterior means of the test set, coloured by label.
  void write_latent_scatter() {
    ag::NoGradGuard no_grad(tape_);
    ag::Array means({test_.size(), 2});
    datasets::Loader loader = test_loader(o_.eval_batch);
    loader.start_epoch();
    std::size_t row = 0;
    std::vector<int> labels;
    while (loader.next()) {
      tape_.reset();
      const ag::Array& mu = vae_.encode(tape_.constant(loader.batch())).mu.value();
      for (std::size_t i = 0; i < mu.shape()[0]; ++i, ++row) {
        means(row, 0) = mu(i, 0);
        means(row, 1) = mu(i, 1);
      }
      for (std::int32_t l : loader.labels()) labels.push_back(l);
    }
    // Colours and a legend for up to 20 classes numbered from 0; anything else is one colour.
    std::vector<std::string> names;
    const bool classes_ok = labels.size() == test_.size() && !labels.empty() &&
                            *std::min_element(labels.begin(), labels.end()) >= 0 &&
                            *std::max_element(labels.begin(), labels.end()) < 20;
    if (classes_ok) {
      const int classes = *std::max_element(labels.begin(), labels.end()) + 1;
      const bool fashion = o_.data.string().find("fashion") != std::string::npos && classes == 10;
      for (int c = 0; c < classes; ++c)
        names.push_back(fashion ? kFashionNames[static_cast<std::size_t>(c)] : std::to_string(c));
    } else {
      labels.assign(test_.size(), 0);
      names = {"test examples"};
    }
    pictures::write_scatter((o_.out / "latent.png").string(), means, labels, names,
                            "test-set posterior means, by label");
  }

  // The decoder over a 20 x 20 grid of the latent plane, z in [-3, 3]^2 (top row: z2 = 3).
  void write_manifold(std::size_t side) {
    ag::NoGradGuard no_grad(tape_);
    constexpr std::size_t kGrid = 20;
    ag::Array z({kGrid * kGrid, 2});
    for (std::size_t r = 0; r < kGrid; ++r)
      for (std::size_t c = 0; c < kGrid; ++c) {
        z(r * kGrid + c, 0) = -3.0F + 6.0F * static_cast<float>(c) / (kGrid - 1);
        z(r * kGrid + c, 1) = 3.0F - 6.0F * static_cast<float>(r) / (kGrid - 1);
      }
    tape_.reset();
    const ag::Array images = vae_.expected_x(vae_.decode(tape_.constant(z))).value();
    pictures::write_grid((o_.out / "manifold.png").string(), images, side, side, kGrid, 1);
  }

  void write_results() {
    nlohmann::json results = {{"epochs", epochs_done_},
                              {"test_loss", last_test_.loss},
                              {"test_recon", last_test_.recon},
                              {"test_kl", last_test_.kl},
                              {"config", vae_.config().to_metadata()}};
    if (o_.iwae > 0) {
      const auto start = Clock::now();
      const double nll = iwae_nll();
      fmt::print("test NLL <= {:.3f} nats (importance-weighted bound, K={}, {:.1f} s)\n", nll, o_.iwae,
                 std::chrono::duration<double>(Clock::now() - start).count());
      results["iwae_k"] = o_.iwae;
      results["test_nll_iwae"] = nll;
    }
    write_text_atomically(o_.out / "results.json", results.dump(2) + "\n");
  }

  double iwae_nll() {
    ag::Rng rng(stream_seed(o_.seed, kIwae));
    // Small batches: each of the K samples decodes the whole batch.
    datasets::Loader loader = test_loader(100);
    loader.start_epoch();
    double total = 0;
    while (loader.next())
      for (double b : vae_.importance_weighted_bound(tape_, loader.batch(), o_.iwae, rng)) total -= b;
    return total / static_cast<double>(test_.size());
  }

  TrainOptions o_;
  datasets::Dataset train_, test_;
  Generators gen_;
  models::Vae vae_;
  optim::Adam adam_;
  datasets::Loader loader_;
  ag::Tape tape_;
  std::size_t epochs_done_ = 0;
  std::string metrics_;
  EvalResult last_test_;
};

}  // namespace

float train_step(ag::Tape& tape, models::Vae& vae, optim::Optimizer& optimizer, const ag::Array& batch,
                 ag::Rng& noise, float beta) {
  tape.reset();
  models::VaeLoss l = vae.loss(tape.constant(batch), noise, beta);
  const float value = l.loss.item();
  if (!std::isfinite(value)) return value;  // the caller reports it; the weights stay good
  optimizer.zero_grad();
  tape.backward(l.loss);
  optimizer.step();
  return value;
}

void train_vae(TrainOptions options) {
  if (options.threads > 0) ag::set_num_threads(options.threads);
  if (options.resume.empty()) {
    Run(std::move(options)).run();
    return;
  }
  const nn::SafetensorsFile file = nn::SafetensorsFile::load(options.resume);
  resolve_resume(file, options);
  Run run(std::move(options));
  run.restore(file);
  run.run();
}

}  // namespace tools
