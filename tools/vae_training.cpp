#include "tools/vae_training.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <system_error>
#include <thread>


#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "autograd/kernels/parallel.hpp"
#include "datasets/error.hpp"
#include "datasets/loader.hpp"
#include "distributed/agree_on_failure.hpp"
#include "distributed/broadcast.hpp"
#include "distributed/communicator.hpp"
#include "models/conditional_vae_file.hpp"
#include "models/conv_nets.hpp"
#include "models/vae_file.hpp"
#include "nn/atomic_file.hpp"
#include "nn/checkpoint.hpp"
#include "nn/training_state.hpp"
#include "optim/adam.hpp"
#include "optim/clip.hpp"
#include "tools/command.hpp"
#include "tools/model.hpp"
#include "tools/optimization.hpp"
#include "tools/best_epoch.hpp"
#include "tools/broken_pipe.hpp"
#include "tools/interrupt.hpp"
#include "tools/memory_budget.hpp"
#include "tools/metrics_rows.hpp"
#include "tools/progress.hpp"
#include "tools/run_pictures.hpp"
#include "tools/run_report.hpp"
#include "tools/shape_text.hpp"
#include "tools/sharded_step.hpp"
#include "tools/streams.hpp"
#include "tools/training_data.hpp"

namespace tools {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;


struct EvalResult {
  double loss = 0, recon = 0, kl = 0;  // per example, nats
};

void write_text_atomically(const fs::path& path, const std::string& text) {
  nn::write_file_atomically(path, [&](const nn::ByteSink& write) { write(text.data(), text.size()); });
}

models::VaeConfig model_config(const TrainOptions& o, const datasets::Dataset& data) {
  models::VaeConfig c;
  c.input_dim = data.features();
  c.hidden = o.hidden;
  c.latent = o.latent;
  c.decoder = o.decoder;
  c.arch = o.arch;
  if (o.arch == models::Arch::conv) {
    const std::optional<ImageShape> image = image_shape(data.example_shape());
    if (!image)
      throw FlagError(fmt::format("--arch conv: the examples, of shape [{}], are not images ([H, W] or [H, W, 3])",
                                  shape_text(data.example_shape())));
    c.image = {image->channels, image->height, image->width};
    try {
      c.validate();
    } catch (const std::invalid_argument& e) {
      throw FlagError(fmt::format("--arch conv: {}", e.what()));
    }
  }
  return c;
}

// ---- resuming: the checkpoint's pinned options, read through the same validation layer ----

void resolve_resume(const nn::SafetensorsFile& file, TrainOptions& o) {
  const nn::Metadata& m = file.metadata();
  auto format = m.find("format");
  if (format == m.end() || format->second != kCheckpointFormat)
    throw std::invalid_argument(fmt::format(
        "--resume: {} is not a training checkpoint (format '{}'); resume from the "
        "checkpoint.safetensors that vae train writes beside model.safetensors",
        file.source(), format == m.end() ? "none" : format->second));
  for (const OptionRow& row : train_option_table()) {
    if (!row.pinned) continue;
    auto it = m.find("option." + row.name);
    if (it == m.end() && row.absent_means.empty())
      throw std::invalid_argument(fmt::format("--resume: {} lacks option '{}'", file.source(), row.name));
    const std::string saved_text = it == m.end() ? row.absent_means : it->second;
    TrainOptions saved = o;
    try {
      row.set(saved, saved_text);
    } catch (const FlagError& e) {
      throw std::invalid_argument(fmt::format("{}: its option {}", file.source(), e.what()));
    }
    const bool given = std::find(o.given.begin(), o.given.end(), row.name) != o.given.end();
    if (given && row.get(saved) != row.get(o))
      throw std::invalid_argument(fmt::format(
          "--{} {} contradicts the checkpoint {}, which was trained with --{} {}; drop the flag "
          "to continue that run",
          row.name, row.show(o), file.source(), row.name, row.show(saved)));
    row.set(o, saved_text);
  }
}

// Each class adds a one-hot input to the encoder and the decoder (a whole input plane to a
// conv encoder), so a stray label of 10^8 would ask for gigabytes: labels number the classes
// from 0, and more than this many is taken for a mistake.
constexpr std::size_t kMaxClasses = 10'000;

// The classes a conditional model is trained on: every label the data uses (training and
// evaluation) and every class it names. Refused for data without labels, or for more than
// kMaxClasses classes.
std::size_t classes_of(const TrainingData& data, const TrainOptions& o) {
  if (!o.conditional) return 0;
  if (!data.train.has_labels())
    throw FlagError(fmt::format("--conditional: the examples of {} have no labels, and a conditional model "
                                "learns from each example's class; give labelled data (IDX with its labels file, "
                                "a CSV with --label-column, an image folder with one subfolder per class)",
                                o.data.data.string()));
  // (found at the first evaluation, after an epoch of training, naming neither the split nor the data)
  if (!data.eval.has_labels())
    throw datasets::DataError(fmt::format("--conditional: the {} examples of {} have no labels, and a conditional "
                                          "model is evaluated on each example's class",
                                          data.eval_name, o.data.data.string()));
  const std::size_t named = data.train.label_names().size();
  std::size_t labelled = 0;  // the largest label + 1
  for (const datasets::Dataset* d : {&data.train, &data.eval})
    for (std::int32_t label : d->labels())
      if (label >= 0) labelled = std::max(labelled, static_cast<std::size_t>(label) + 1);
  if (std::max(named, labelled) > kMaxClasses)
    throw datasets::DataError(fmt::format(
        "--conditional: {}: {} would make a model of {} classes, and a conditional model takes at most {} "
        "(labels number the classes from 0)",
        o.data.data.string(), labelled > named ? fmt::format("label {}", labelled - 1) : fmt::format("{} label names", named),
        std::max(named, labelled), kMaxClasses));
  return std::max(named, labelled);
}

// A resumed conditional run keeps the checkpoint's classes.
std::size_t classes_of(const nn::SafetensorsFile& file, const TrainOptions& o) {
  if (!o.conditional) return 0;
  return models::parse_count(file.metadata_value("classes"), file.source() + " metadata 'classes'");
}

// Data a resumed conditional run goes on with (other data, with --force) may not use a class
// past the checkpoint's.
void check_labels_fit(const TrainingData& data, const TrainOptions& o, std::size_t classes,
                      const nn::SafetensorsFile& file) {
  for (const datasets::Dataset* d : {&data.train, &data.eval})
    for (std::int32_t label : d->labels())
      if (!is_class(label, classes))
        throw datasets::DataError(fmt::format("--resume: {} holds label {}, but the conditional model of {} has {}",
                                              o.data.data.string(), label, file.source(), classes_text(classes)));
}

// A resumed run without --data reads the data the checkpoint was trained on, where it was then.
void resume_on_the_checkpoints_data(const nn::SafetensorsFile& file, TrainOptions& o) {
  if (std::find(o.given.begin(), o.given.end(), "data") != o.given.end()) return;
  const auto it = file.metadata().find("data_path");
  if (it == file.metadata().end()) return;  // checkpoints before data_path: the default, as then
  std::error_code ec;
  if (!fs::exists(it->second, ec))
    throw std::invalid_argument(fmt::format("--resume: {} was trained on {}, which is not there any more; give "
                                            "--data with the same examples",
                                            file.source(), it->second));
  o.data.data = it->second;
}

void check_same_data(const nn::SafetensorsFile& file, const TrainingData& data, const TrainOptions& o) {
  // Not even with --force (nor with the same values, which the fingerprint does not tell
  // apart): a conv model would go on as one of another image size (as many parameters: 4x16
  // for 8x8), an MLP would draw its pictures in the new shape.
  const std::vector<std::size_t>& shape = data.train.example_shape();
  // Examples of another size (input_dim) or of another image shape (example_shape) than the
  // checkpoint's: both shapes and the data said.
  const auto said = file.metadata().find("example_shape");
  const auto refuse = [&](const std::string& trained_shape, std::size_t trained_values) {
    throw std::invalid_argument(fmt::format(
        "--resume: {} was trained on examples of shape [{}] ({} values), but those of {} are [{}] ({} values)",
        file.source(), trained_shape, trained_values, o.data.data.string(), shape_text(shape), data.train.features()));
  };
  if (auto it = file.metadata().find("input_dim"); it != file.metadata().end()) {
    const std::size_t trained = models::parse_count(it->second, file.source() + " metadata 'input_dim'");
    if (trained != data.train.features())
      refuse(said != file.metadata().end() ? said->second : std::to_string(trained), trained);
  }
  if (said != file.metadata().end() && shape.size() > 1) {
    const std::vector<std::size_t> trained = parse_shape_text(said->second);
    std::size_t values = 1;
    for (std::size_t d : trained) values *= d;
    if (trained.size() > 1 && trained != shape) refuse(said->second, values);
  }
  const std::string& saved = file.metadata_value("data_fingerprint");
  if (saved == data.fingerprint) return;
  if (!o.force)
    throw std::invalid_argument(fmt::format(
        "--resume: the training examples of {} (fingerprint {}) are not those {} was trained on "
        "(fingerprint {}); pass --force to continue on this data anyway",
        o.data.data.string(), data.fingerprint, file.source(), saved));
  fmt::print("warning: resuming on data other than the checkpoint's (--force)\n");
}

// A finished run is somebody's result: never overwritten without being asked.
void refuse_to_overwrite(const TrainOptions& o) {
  std::error_code ec;
  if (fs::exists(o.out, ec) && !fs::is_directory(o.out, ec))
    throw FlagError(fmt::format("--out {}: that is a file, not a folder; vae train writes a folder of results",
                                o.out.string()));
  // A file on the way to it: the folder could not be made, which was found after the data was
  // read ("filesystem error: cannot create directories: Not a directory").
  for (fs::path above = o.out.parent_path(); !above.empty(); above = above.parent_path()) {
    if (fs::exists(above, ec)) {
      if (!fs::is_directory(above, ec))
        throw FlagError(fmt::format("--out {}: {} is a file, not a folder", o.out.string(), above.string()));
      break;
    }
    if (above == above.parent_path()) break;  // the root
  }
  if (o.force) return;
  if (!o.resume.empty() && fs::equivalent(o.resume.parent_path().empty() ? "." : o.resume.parent_path(), o.out, ec))
    return;
  const fs::path model = o.out / "model.safetensors";
  if (fs::exists(model, ec))
    throw std::invalid_argument(fmt::format(
        "{} already holds a trained model ({}); pass --force to overwrite it, --resume {} to continue "
        "it, or choose another --out",
        o.out.string(), model.string(), (o.out / "checkpoint.safetensors").string()));
  // No model, but a file of the user's may still have a name this run writes.
  for (const char* name : {"checkpoint.safetensors", "best.safetensors", "metrics.csv", "results.json", "curves.png", "samples.png",
                           "reconstructions.png", "latent.png", "manifold.png", "report.html"})
    if (fs::exists(o.out / name, ec))
      throw std::invalid_argument(fmt::format("{} already holds {}, which this run would replace; pass --force to "
                                              "replace it, or choose another --out",
                                              o.out.string(), name));
}

// ---- the run ----

class Run {
 public:
  Run(TrainOptions options, TrainingData data, const models::VaeConfig& config, std::size_t num_classes,
      distributed::Communicator& world)
      : world_(&world),
        root_(world.rank() == 0),
        o_(std::move(options)),
        data_(std::move(data)),
        init_(stream_seed(o_.seed, kInit)),
        noise_(stream_seed(o_.seed, kNoise)),
        model_(make_model(config, num_classes, init_)),
        optimizer_(make_optimizer(model_->module().parameters(), o_)),
        best_(o_.patience),
        loader_(data_.train, {.batch_size = o_.batch, .shuffle = true, .binarize = o_.binarize,
                              .seed = stream_seed(o_.seed, kShuffle),
                              .rank = static_cast<std::size_t>(world.rank()),
                              .ranks = static_cast<std::size_t>(world.size())}) {
    schedule_ = make_schedule(o_, loader_.batches_per_epoch());
    if (world.size() > 1) sharded_.emplace(world, *model_, o_.overlap_allreduce, o_.clip_grad);
  }

  void restore(const nn::SafetensorsFile& file) {
    nn::TrainingState state = training_state();
    nn::restore_training_state(file, state);
    loader_.set_state(state.text.at("loader"));
    metrics_ = with_lr_column(state.text.at("metrics"), [this](std::size_t e) { return lr_after(e); });
    epochs_done_ = models::parse_count(file.metadata_value("epochs"), file.source() + " metadata 'epochs'");
    check_metrics_rows(metrics_, epochs_done_, file.source());
    best_.restore(parse_metrics(metrics_));
    last_checkpoint_ = file.source();
    if (epochs_done_ >= o_.epochs)
      throw std::invalid_argument(fmt::format("{} has already trained {} epochs; pass --epochs greater than {} to "
                                              "continue", file.source(), epochs_done_, epochs_done_));
    if (best_.patience_ran_out(epochs_done_))
      throw std::invalid_argument(fmt::format("{} stopped early after epoch {}: no lower {} loss for {} epochs since "
                                              "epoch {}; pass a larger --patience (or 0) to continue it",
                                              file.source(), epochs_done_, data_.eval_name, o_.patience, best_.epoch()));
    fmt::print("resuming {} after epoch {}\n", file.source(), epochs_done_);
  }

  // Every rank continues from rank 0's weights, optimizer, generators and loader position.
  void start_from_rank_0() {
    if (world_->size() == 1) return;
    nn::TrainingState state = training_state();
    distributed::broadcast(*world_, state, 0);
    loader_.set_state(state.text.at("loader"));
    metrics_ = with_lr_column(state.text.at("metrics"), [this](std::size_t e) { return lr_after(e); });
    best_.restore(parse_metrics(metrics_));  // (replaying epochs rank 0 has seen already changes nothing)
  }

  // Called after prepare, and under MPI after every rank's prepare succeeded: a run refused
  // (--epochs already done, a patience run out, a rank's error) leaves no empty folder behind.
  void create_out() {
    std::error_code made;
    if (root_ && (fs::create_directories(o_.out, made), made))
      throw std::runtime_error(fmt::format("--out {}: cannot create the folder: {}", o_.out.string(), made.message()));
    std::error_code ec;  // a new run (--force) leaves no best.safetensors of another run behind
    if (root_ && o_.resume.empty()) fs::remove(o_.out / "best.safetensors", ec);
  }

  // The whole loop: one epoch after another, each evaluated and saved.
  void run() {
    fmt::print("vae train: {} training / {} {} examples of {} features\ndata: {}\n", data_.train.size(),
               data_.eval.size(), data_.eval_name, data_.train.features(), o_.data.data.string());
    fmt::print("model: {} ({} parameters), {}, batch {}, beta {}{}, {} thread(s)\n", model_->describe(),
               model_->module().num_parameters(), describe_optimization(o_), o_.batch, o_.beta,
               o_.kl_warmup > 0 ? fmt::format(" (warm-up over {} epochs)", o_.kl_warmup) : "", ag::num_threads());
    if (sharded_)
      fmt::print("data-parallel: {}, {} thread(s) each; the global batch of {} split between them\n",
                 world_->describe(), ag::num_threads(), o_.batch);
    bool stop = false;
    for (std::size_t epoch = epochs_done_ + 1; epoch <= o_.epochs && !stop; ++epoch) {
      const auto start = Clock::now();
      const auto [train_loss, beta] = train_epoch(epoch);
      const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
      epochs_done_ = epoch;
      EpochEnd end = root_ ? finish_epoch(epoch, train_loss, beta, seconds) : EpochEnd::go_on;
      // rank 0 alone evaluates, writes and decides; the others learn whether to go on
      if (world_->size() > 1) end = agree_with_rank_0(end);
      if (end == EpochEnd::diverged) throw TrainingDiverged(diverged_message_);
      stop = end == EpochEnd::patience_ran_out;
    }
    if (epochs_done_ == 0) throw FlagError("--epochs: nothing to train (0 epochs)");
    if (!root_) return;
    if (stop)
      fmt::print("stopped early: no lower {} loss for {} epochs since epoch {} ({:.3f})\n", data_.eval_name,
                 o_.patience, best_.epoch(), best_.loss());
    if (keeps_best()) {
      const fs::path best = o_.out / "best.safetensors";
      std::error_code ec;  // (a run resumed with --keep-best whose best epoch came before it has none)
      fmt::print("best: epoch {}, {} loss {:.3f}, {}\n", best_.epoch(), data_.eval_name, best_.loss(),
                 fs::exists(best, ec) ? "in " + best.string() : "trained before --keep-best, so not kept");
    }
    finish_run();
  }

 private:
  bool keeps_best() const { return o_.keep_best || o_.patience > 0; }

  // What rank 0 decides after an epoch.
  enum class EpochEnd : unsigned char { go_on, patience_ran_out, diverged };

  // Rank 0's decision, on every rank.
  EpochEnd agree_with_rank_0(EpochEnd end) {
    std::byte flag{static_cast<unsigned char>(end)};
    world_->broadcast(std::span<std::byte>(&flag, 1), 0);
    return static_cast<EpochEnd>(flag);
  }

  // Rank 0 after each epoch: evaluates, prints, saves; returns whether --patience ran out, or
  // whether the evaluation loss is not finite (the weights have diverged though no training
  // step's loss showed it yet: a last epoch of them ended the run with exit 0 and a NaN loss).
  // Such an epoch is not saved: the checkpoint before it stays the last good one.
  EpochEnd finish_epoch(std::size_t epoch, double train_loss, double beta, double seconds) {
    last_eval_ = evaluate(epoch);
    metrics_ += metrics_row(epoch, train_loss, last_eval_.loss, last_eval_.recon, last_eval_.kl, seconds, beta,
                            lr_after(epoch));
    // At most 80 columns: "epoch  10/10  train 244.123  test 244.343 (245.1 + 25.3)  20.1 s"
    fmt::print("epoch {:>3}/{}  train {}  {} {} ({} + {})  {:.1f} s\n", epoch, o_.epochs, figure_text(train_loss, 3),
               data_.eval_name == "test" ? "test" : "val", figure_text(last_eval_.loss, 3),
               figure_text(last_eval_.recon, 1), figure_text(last_eval_.kl, 1), seconds);
    if (sharded_) {
      const auto& a = sharded_->allreduce();
      fmt::print("allreduce ({}): {:.2f} ms per step ({:.2f} MB in {} message(s), waits included)\n",
                 o_.overlap_allreduce ? "overlapped" : "blocking", 1e3 * a.seconds() / static_cast<double>(a.calls()),
                 4e-6 * static_cast<double>(a.values()), a.messages());
    }
    flush_standard_output((o_.out / "metrics.csv").string());
    if (!std::isfinite(last_eval_.loss)) {
      epochs_done_ = epoch - 1;  // (for where_the_work_is: this epoch's weights are not kept)
      diverged_message_ = fmt::format("the {} loss became {} after epoch {} (lr {}); training stopped. {}; try a "
                                      "smaller --lr",
                                      data_.eval_name, last_eval_.loss, epoch, optimizer_->lr(), where_the_work_is());
      return EpochEnd::diverged;
    }
    const bool better = best_.record(epoch, last_eval_.loss);
    save();
    if (better && keeps_best())
      nn::save_module(o_.out / "best.safetensors", model_->module(), model_metadata());
    write_curves(o_.out / "curves.png", parse_metrics(metrics_), data_.eval_name);
    return best_.patience_ran_out(epoch) ? EpochEnd::patience_ran_out : EpochEnd::go_on;
  }

  // Rank 0 after the last epoch: pictures, results.json and the report.
  void finish_run() {
    const auto pictures = write_run_pictures(o_.out, *model_, data_.eval, o_.seed, eval_batch(), o_.binarize);
    if (pictures.empty())
      fmt::print("pictures: examples of shape [{}] are not images, so no image grids\n",
                 shape_text(data_.eval.example_shape()));
    else
      fmt::print("pictures: {} in {}\n", fmt::join(pictures, ", "), o_.out.string());
    write_results();
    std::vector<std::string> configuration = {model_->describe(),
                                              fmt::format("{} parameters", model_->module().num_parameters()),
                                              fmt::format("data: {}", o_.data.data.string()),
                                              fmt::format("{} training / {} {} examples", data_.train.size(),
                                                          data_.eval.size(), data_.eval_name)};
    for (const OptionRow& row : train_option_table())
      if (row.pinned) configuration.push_back(fmt::format("--{} {}", row.name, row.show(o_)));
    std::vector<std::string> shown = {"curves.png"};
    shown.insert(shown.end(), pictures.begin(), pictures.end());
    write_report(o_.out, fmt::format("vae train: {}", o_.out.string()), configuration, parse_metrics(metrics_),
                 data_.eval_name, shown);
    fmt::print("report: {}\n", (o_.out / "report.html").string());
  }

 private:
  double beta_at(std::size_t step_in_run) const {
    if (o_.kl_warmup <= 0) return o_.beta;
    const double epochs = static_cast<double>(step_in_run) / static_cast<double>(loader_.batches_per_epoch());
    return o_.beta * std::min(1.0, epochs / o_.kl_warmup);
  }

  // One pass over the training data; returns the mean loss and the last beta.
  std::pair<double, double> train_epoch(std::size_t epoch) {
    loader_.start_epoch();
    ProgressBar bar(fmt::format("epoch {}/{}", epoch, o_.epochs), loader_.batches_per_epoch(),
                    o_.progress && root_ && stderr_is_terminal());
    double total = 0, beta = o_.beta;
    std::size_t seen = 0, step = 0;
    while (loader_.next()) {
      ++step;
      beta = beta_at((epoch - 1) * loader_.batches_per_epoch() + step);
      schedule_->apply(*optimizer_, (epoch - 1) * loader_.batches_per_epoch() + step - 1);
      const float value = sharded_ ? sharded_->run(tape_, *optimizer_, loader_, noise_, static_cast<float>(beta))
                                   : train_step(tape_, *model_, *optimizer_, loader_.batch(), loader_.labels(), noise_,
                                                static_cast<float>(beta), o_.clip_grad);
      // The first step's loss is the initial model's, before any update: the learning rate has
      // no part in it, and "try a smaller --lr" sent users the wrong way (data of values 10^6).
      const bool before_any_update = epoch == 1 && step == 1 && o_.resume.empty();
      if (!std::isfinite(value))
        throw TrainingDiverged(fmt::format("the loss became {} at epoch {}, step {} (lr {}); training stopped. {}; {}",
                                           value, epoch, step, optimizer_->lr(), where_the_work_is(),
                                           before_any_update
                                               ? "that was the initial model's loss, before any update: the data's "
                                                 "values are too large for it (scale them to about [0, 1], or "
                                                 "standardize them)"
                                               : "try a smaller --lr"));
      if (const int signal_number = InterruptWatch::received()) {
        bar.finish();
        throw TrainingInterrupted(
            signal_number,
            fmt::format("interrupted ({}) at epoch {}, step {} of {}. {}{}", InterruptWatch::name(signal_number), epoch,
                        step, loader_.batches_per_epoch(), where_the_work_is(),
                        last_checkpoint_.empty() ? ""
                                                 : fmt::format("; to continue, run the same command with --resume {}",
                                                               last_checkpoint_)));
      }
      const std::size_t rows = loader_.global_rows();
      total += static_cast<double>(value) * static_cast<double>(rows);
      seen += rows;
      bar.update(step, total / static_cast<double>(seen), seen);
    }
    bar.finish();
    return {total / static_cast<double>(seen), beta};
  }

  // The learning rate of the last step of `epoch` (the schedule is a pure function of the step).
  double lr_after(std::size_t epoch) const { return schedule_->lr(epoch * loader_.batches_per_epoch() - 1); }

  // For a message about a run that stops early.
  std::string where_the_work_is() const {
    if (last_checkpoint_.empty()) return "No checkpoint was written by this run";
    return fmt::format("The last good checkpoint, after epoch {}, is {}", epochs_done_, last_checkpoint_);
  }

  std::size_t eval_batch() const { return evaluation_batch(o_); }

  // The evaluation set in order; with --binarize it is binarized too (the likelihood the
  // model was trained for), with the same draw at every evaluation.
  datasets::Loader eval_loader(std::size_t batch) const {
    return datasets::Loader(data_.eval, {.batch_size = batch, .shuffle = false, .binarize = o_.binarize,
                                         .seed = stream_seed(o_.seed, kTestBinarize)});
  }

  // The negative ELBO (beta = 1 whatever the training beta), one z per example from a
  // generator seeded by the epoch, so the figure does not depend on the run's history.
  EvalResult evaluate(std::size_t epoch) {
    ag::Rng rng(stream_seed(o_.seed, kEvaluation, epoch));
    datasets::Loader loader = eval_loader(eval_batch());
    loader.start_epoch();
    EvalResult r;
    ag::NoGradGuard no_grad(tape_);
    while (loader.next()) {
      tape_.reset();
      ag::Var labels = model_->labels_on(tape_, loader.labels());
      models::VaeLoss l = model_->loss(tape_.constant(loader.batch()), labels, rng, 1.0F);
      const double rows = static_cast<double>(loader.batch().shape()[0]);
      r.recon += l.reconstruction.item() * rows;
      r.kl += l.kl.item() * rows;
    }
    const double n = static_cast<double>(data_.eval.size());
    r.recon /= n;
    r.kl /= n;
    r.loss = r.recon + r.kl;
    return r;
  }

  nn::TrainingState training_state() {
    return {model_->module(), *optimizer_, {{"noise", &noise_}}, {{"loader", loader_.state()}, {"metrics", metrics_}}};
  }

  nn::Metadata model_metadata() const {
    nn::Metadata m = model_->metadata();
    m["format"] = kModelFormat;
    m["epochs"] = std::to_string(epochs_done_);
    m["test_loss"] = fmt::format("{:.4f}", last_eval_.loss);
    m["evaluated_on"] = data_.eval_name;
    m["example_shape"] = shape_text(data_.train.example_shape());
    if (data_.train.channels_first()) m["channels_first"] = "true";
    m["label_names"] = fmt::format("{}", fmt::join(data_.train.label_names(), "\n"));
    return m;
  }

  // Two files each epoch, each written atomically: model.safetensors (weights only, for
  // PyTorch and for the subcommands) and checkpoint.safetensors (also what resuming needs).
  void save() {
    nn::save_module(o_.out / "model.safetensors", model_->module(), model_metadata());
    nn::Metadata m = model_metadata();
    m["format"] = kCheckpointFormat;
    m["data_fingerprint"] = data_.fingerprint;
    std::error_code ec;  // absolute, so that a run resumed from another folder finds it
    const fs::path data = fs::absolute(o_.data.data, ec);
    m["data_path"] = (ec ? o_.data.data : data.lexically_normal()).string();
    for (const OptionRow& row : train_option_table())
      if (row.pinned) m["option." + row.name] = row.get(o_);
    last_checkpoint_ = (o_.out / "checkpoint.safetensors").string();
    nn::save_training_state(last_checkpoint_, training_state(), m);
    write_text_atomically(o_.out / "metrics.csv", kMetricsHeader + metrics_);
  }

  void write_results() {
    nlohmann::json results = {{"epochs", epochs_done_},
                              {"evaluated_on", data_.eval_name},
                              {"test_loss", last_eval_.loss},
                              {"test_recon", last_eval_.recon},
                              {"test_kl", last_eval_.kl},
                              {"best_epoch", best_.epoch()},
                              {"best_test_loss", best_.loss()},
                              {"config", model_->metadata()}};
    if (o_.iwae > 0) {
      const auto start = Clock::now();
      const double nll = iwae_nll();
      fmt::print("{} NLL <= {:.3f} nats (importance-weighted bound, K={}, {:.1f} s)\n", data_.eval_name, nll,
                 o_.iwae, std::chrono::duration<double>(Clock::now() - start).count());
      results["iwae_k"] = o_.iwae;
      results["test_nll_iwae"] = nll;
    }
    write_text_atomically(o_.out / "results.json", results.dump(2) + "\n");
  }

  double iwae_nll() {
    ag::Rng rng(stream_seed(o_.seed, kIwae));
    datasets::Loader loader = eval_loader(100);  // small batches: each of the K samples decodes the batch
    loader.start_epoch();
    double total = 0;
    while (loader.next())
      for (double b : model_->importance_weighted_bound(tape_, loader.batch(), loader.labels(), o_.iwae, rng))
        total -= b;
    return total / static_cast<double>(data_.eval.size());
  }

  distributed::Communicator* world_;
  bool root_;
  TrainOptions o_;
  TrainingData data_;
  ag::Rng init_, noise_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<optim::Adam> optimizer_;  // Adam, or AdamW with --weight-decay
  std::unique_ptr<optim::Schedule> schedule_;  // the learning rate of each step
  BestEpoch best_;  // the epoch of the lowest evaluation loss: --keep-best, --patience
  datasets::Loader loader_;
  ag::Tape tape_;
  std::optional<ShardedStep> sharded_;  // under mpirun with more than one rank
  std::size_t epochs_done_ = 0;
  std::string metrics_;
  std::string last_checkpoint_;  // the newest checkpoint that exists, for the divergence message
  std::string diverged_message_;  // rank 0's, when an evaluation loss was not finite
  EvalResult last_eval_;
};

}  // namespace

// The rest of a step once the loss is on the tape.
static float descend(ag::Tape& tape, optim::Optimizer& optimizer, ag::Var loss, double clip_norm) {
  const float value = loss.item();
  if (!std::isfinite(value)) return value;  // the caller reports it; the weights stay good
  optimizer.defer_zero_grad();  // backward writes the gradients: no pass of zeros first
  tape.backward(loss);
  if (clip_norm > 0) optim::clip_grad_norm(optimizer.parameters(), clip_norm);
  optimizer.step();
  return value;
}

float train_step(ag::Tape& tape, Model& model, optim::Optimizer& optimizer, const ag::Array& batch,
                 std::span<const std::int32_t> labels, ag::Rng& noise, float beta, double clip_norm) {
  tape.reset();
  ag::Var y = model.labels_on(tape, labels);
  return descend(tape, optimizer, model.loss(tape.constant(batch), y, noise, beta).loss, clip_norm);
}

float train_step(ag::Tape& tape, models::Vae& vae, optim::Optimizer& optimizer, const ag::Array& batch,
                 ag::Rng& noise, float beta, double clip_norm) {
  tape.reset();
  return descend(tape, optimizer, vae.loss(tape.constant(batch), noise, beta).loss, clip_norm);
}

namespace {

// Everything before the first message between ranks: options, data, checkpoint, model; all
// checked before --out is made (Run::create_out, called by the caller).
std::unique_ptr<Run> prepare(TrainOptions o, distributed::Communicator& world) {
  if (o.threads > 0) ag::set_num_threads(static_cast<int>(o.threads));
  if (o.resume.empty()) {
    if (o.epochs == 0) throw FlagError("--epochs: nothing to train (0 epochs)");  // (before reading data)
    settle_schedule(o);
    refuse_to_overwrite(o);
    TrainingData data = load_training_data(o);
    const std::size_t classes = classes_of(data, o);
    const models::VaeConfig config = model_config(o, data.train);
    check_model_fits_in_memory(config, classes);
    check_batches_fit_in_memory(config, classes, o, data);
    return std::make_unique<Run>(std::move(o), std::move(data), config, classes, world);
  }
  const nn::SafetensorsFile file = nn::SafetensorsFile::load(o.resume);
  nn::check_all_finite(file);  // (restore would find a NaN only after --out is created)
  refuse_to_overwrite(o);
  resolve_resume(file, o);
  resume_on_the_checkpoints_data(file, o);
  settle_schedule(o);
  TrainingData data = load_training_data(o);
  classes_of(data, o);  // (labelled data for a conditional model)
  check_same_data(file, data, o);
  // Sizes from the checkpoint are checked against its tensors before a model is built.
  const std::size_t classes = classes_of(file, o);
  if (o.conditional) check_labels_fit(data, o, classes, file);
  const models::VaeConfig config = model_config(o, data.train);
  if (o.conditional) models::check_parameter_count(config, classes, file);
  else models::check_parameter_count(config, file);
  check_batches_fit_in_memory(config, classes, o, data);
  auto run = std::make_unique<Run>(std::move(o), std::move(data), config, classes, world);
  run->restore(file);
  return run;
}

std::string rank_name(const char* program, const distributed::Communicator& world) {
  return fmt::format("{} (rank {} of {})", program, world.rank(), world.size());
}

// After a step every rank took on its own (`error` its failure, if any): if any failed, every
// rank leaves now with a non-zero code, and an error every rank hit alike (a bad flag, missing
// data) is printed once, by rank 0 (as "vae train: error: ..."; a rank with an error of its own
// names itself).
void agree_or_leave(distributed::Communicator& world, const std::exception_ptr& error) {
  const Failure failure = error ? describe_failure(error) : Failure{};
  const distributed::Agreement agreed = distributed::agree_on_failure(world, failure.exit_code, failure.message);
  if (!agreed.any_failed) return;
  // Printed before MPI_Finalize, which every rank reaches only after this: mpirun ends the
  // job as soon as one rank exits non-zero, so a rank printing later might not get to.
  if (agreed.report)
    fmt::print(stderr, "{}: {}\n", world.rank() == 0 ? "vae train" : rank_name("vae train", world), failure.message);
  throw AlreadyReported{agreed.exit_code};
}

// Every rank prepares on its own, and they agree; only then does rank 0 make --out (and remove
// a new run's stale best.safetensors), so a run another rank refused leaves no trace.
std::unique_ptr<Run> prepare_together(const std::function<TrainOptions()>& read_options,
                                      distributed::Communicator& world) {
  std::unique_ptr<Run> run;
  std::exception_ptr error;
  try {
    run = prepare(read_options(), world);
  } catch (...) {
    error = std::current_exception();
  }
  agree_or_leave(world, error);
  try {
    run->create_out();
  } catch (...) {
    error = std::current_exception();
  }
  agree_or_leave(world, error);
  return run;
}

// Without MPI, ranks cannot wait for each other: the others give rank 0 time to print before
// their exit makes mpirun end the job.
void let_rank_0_print() { std::this_thread::sleep_for(std::chrono::seconds(1)); }

}  // namespace

// Under mpirun every rank runs this. Rank 0 alone prints (the others' standard output goes
// to /dev/null; their errors still reach stderr). An error before training is agreed on
// (prepare_together). A divergence is seen by every rank at once (the loss is summed across
// ranks), so each stops and rank 0 reports it. Any other failure during training may be one
// rank's alone: it reports it, naming itself, and ends every rank (MPI_Abort) rather than
// leave them waiting for it.
void train_vae(const std::function<TrainOptions()>& read_options) {
  std::unique_ptr<distributed::Communicator> world;
  try {
    world = distributed::start();
  } catch (const std::exception&) {  // mpirun of a build without MPI: every rank fails alike
    if (distributed::launched_rank() == 0) throw;
    let_rank_0_print();
    throw AlreadyReported{1};
  }
  const BrokenPipeWatch pipe_watch;
  if (world->size() == 1) {
    const std::unique_ptr<Run> run = prepare(read_options(), *world);
    run->create_out();
    const InterruptWatch watch;  // (under mpirun, ranks could stop at different steps: not there)
    return run->run();
  }
  if (world->rank() != 0 && std::freopen("/dev/null", "w", stdout) == nullptr)
    throw std::runtime_error("cannot silence the standard output of a rank other than 0");
  const std::unique_ptr<Run> run = prepare_together(read_options, *world);
  try {
    run->start_from_rank_0();
    run->run();
  } catch (const TrainingDiverged&) {
    if (world->rank() == 0) throw;
  } catch (...) {
    world->abort(run_reporting_errors(rank_name("vae train", *world).c_str(),
                                      [] { std::rethrow_exception(std::current_exception()); }));
  }
}

void train_vae(TrainOptions options) {
  train_vae([&options] { return std::move(options); });
}

int report_before_training(int exit_code, const std::string& message) {
  if (distributed::launched_ranks() > 1 && distributed::mpi_built()) {
    const std::unique_ptr<distributed::Communicator> world = distributed::start();
    const distributed::Agreement agreed = distributed::agree_on_failure(*world, exit_code, message);
    if (agreed.report)
      fmt::print(stderr, "{}{}", world->rank() == 0 ? "" : fmt::format("rank {} of {}: ", world->rank(), world->size()),
                 message);
    return agreed.exit_code;
  }
  if (distributed::launched_rank() == 0) fmt::print(stderr, "{}", message);
  else let_rank_0_print();
  return exit_code;
}

}  // namespace tools
