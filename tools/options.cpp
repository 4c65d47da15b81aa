#include "tools/options.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>

#include <fmt/format.h>

namespace tools {
namespace {

// Up to 1e15 as a whole number, beyond that in scientific form: bounds are read by people.
std::string readable(double v) {
  if (std::fabs(v) < 1e15 && v == std::floor(v)) return fmt::format("{}", static_cast<long long>(v));
  return fmt::format("{:g}", v);
}

std::string exact(double v) { return fmt::format("{:a}", v); }  // hex float: round-trips exactly

std::string trimmed(const std::string& text) {
  const auto begin = text.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  return text.substr(begin, text.find_last_not_of(" \t") + 1 - begin);
}

std::string join(const std::vector<std::size_t>& v, const char* empty) {
  return v.empty() ? empty : fmt::format("{}", fmt::join(v, ","));
}

OptionRow count(std::string name, std::string help, std::size_t TrainOptions::*member, std::size_t lo,
                std::size_t hi, bool pinned) {
  const std::string flag = "--" + name;
  auto get = [member](const TrainOptions& o) { return std::to_string(o.*member); };
  return {name, std::move(help), pinned, false,
          [=](TrainOptions& o, const std::string& t) { o.*member = parse_count_flag(flag, t, lo, hi); }, get, get, "N"};
}

OptionRow real(std::string name, std::string help, double TrainOptions::*member, double lo, double hi,
               bool pinned) {
  const std::string flag = "--" + name;
  return {name, std::move(help), pinned, false,
          [=](TrainOptions& o, const std::string& t) { o.*member = parse_real_flag(flag, t, lo, hi); },
          [member](const TrainOptions& o) { return exact(o.*member); },
          [member](const TrainOptions& o) { return fmt::format("{}", o.*member); }, "X"};
}

OptionRow flag(std::string name, std::string help, bool TrainOptions::*member, bool pinned) {
  const std::string dashed = "--" + name;
  auto get = [member](const TrainOptions& o) { return std::string(o.*member ? "1" : "0"); };
  return {name, std::move(help), pinned, true,
          [=](TrainOptions& o, const std::string& t) {
            if (t == "1" || t == "true") o.*member = true;
            else if (t == "0" || t == "false") o.*member = false;
            else throw FlagError(fmt::format("{}: '{}' is not true or false", dashed, t));
          },
          get, get};
}

OptionRow absent_means(std::string value, OptionRow row) {
  row.absent_means = std::move(value);
  return row;
}

template <typename Field>
OptionRow text(std::string name, std::string help, Field member) {
  auto get = [member](const TrainOptions& o) { return std::string(o.*member); };
  const std::string flag = "--" + name;
  return {name, std::move(help), false, false,
          [member, flag](TrainOptions& o, const std::string& t) {
            if (t.empty()) throw FlagError(fmt::format("{}: the path is empty", flag));  // (not a folder to write)
            o.*member = t;
          },
          get, get, "PATH"};
}

OptionRow data_path(std::string name, std::string help, std::filesystem::path DataOptions::*member) {
  auto get = [member](const TrainOptions& o) { return (o.data.*member).string(); };
  return {name, std::move(help), false, false,
          [member](TrainOptions& o, const std::string& t) { o.data.*member = t; }, get, get, "PATH"};
}

OptionRow data_count(std::string name, std::string help, std::size_t DataOptions::*member, std::size_t lo,
                     std::size_t hi, bool pinned) {
  const std::string flag = "--" + name;
  auto get = [member](const TrainOptions& o) { return std::to_string(o.data.*member); };
  return {name, std::move(help), pinned, false,
          [=](TrainOptions& o, const std::string& t) { o.data.*member = parse_count_flag(flag, t, lo, hi); },
          get, get, "N"};
}

std::vector<OptionRow> make_table() {
  constexpr std::size_t kMillion = 1'000'000, kBillion = 1'000'000'000;
  auto hidden_get = [](const TrainOptions& o) { return join(o.hidden, "none"); };
  auto classes_get = [](const TrainOptions& o) { return join(o.exclude_classes, ""); };
  auto decoder_get = [](const TrainOptions& o) { return models::to_string(o.decoder); };
  auto schedule_get = [](const TrainOptions& o) {
    return std::string(o.lr_schedule == LrSchedule::cosine ? "cosine" : "constant");
  };
  auto allreduce_get = [](const TrainOptions& o) { return std::string(o.overlap_allreduce ? "overlapped" : "blocking"); };
  return {
      data_path("data", "an IDX folder or file, a .npy file, a .csv file or a folder of PNG/JPEG images "
                        "(vae train --resume: by default the checkpoint's)",
                &DataOptions::data),
      data_count("limit", "use only the first N examples (of the training split, for vae train; 0: all)", &DataOptions::limit, 0, kBillion,
                 true),
      data_count("label-column", "CSV: the 1-based column holding labels (0: none)", &DataOptions::label_column,
                 0, kMillion, false),
      data_count("channels", "image folders: 1 (gray) or 3 (RGB)", &DataOptions::channels, 1, 3, true),
      data_path("label-names", "a text file with one class name per line", &DataOptions::label_names),
      count("epochs", "total epochs (a resumed run continues up to this many)", &TrainOptions::epochs, 0, kMillion,
            false),
      count("batch", "examples per training step", &TrainOptions::batch, 1, kMillion, true),
      real("lr", "Adam learning rate", &TrainOptions::lr, 1e-12, 1e38, true),  // 1e38: float32 range
      absent_means("constant",
                   {"lr-schedule", "constant, or cosine: half a cosine from --lr down to 0 over --cosine-epochs", true,
                    false,
                    [](TrainOptions& o, const std::string& t) {
                      if (trimmed(t) == "constant") o.lr_schedule = LrSchedule::constant;
                      else if (trimmed(t) == "cosine") o.lr_schedule = LrSchedule::cosine;
                      else throw FlagError(fmt::format("--lr-schedule: '{}' is not constant or cosine", t));
                    },
                    schedule_get, schedule_get, "KIND"}),
      absent_means("0", count("cosine-epochs", "epochs over which --lr-schedule cosine falls to 0 (default: --epochs); "
                                               "kept by a resumed run", &TrainOptions::cosine_epochs, 0, kMillion, true)),
      absent_means("0", real("lr-warmup", "epochs over which the learning rate rises linearly from 0",
                             &TrainOptions::lr_warmup, 0, 1e6, true)),
      absent_means("0", real("weight-decay", "decoupled weight decay (AdamW, as torch.optim.AdamW); 0: Adam",
                             &TrainOptions::weight_decay, 0, 1e6, true)),
      absent_means("0", real("clip-grad", "clip the gradients' global L2 norm to this before each step (0: off)",
                             &TrainOptions::clip_grad, 0, 1e38, true)),
      {"hidden", "encoder widths, comma-separated; the decoder mirrors them; 'none' for a linear model (--arch mlp)", true, false,
       [](TrainOptions& o, const std::string& t) {
         o.hidden = trimmed(t) == "none" ? std::vector<std::size_t>{} : parse_list_flag("--hidden", t, 1, kMaxWidth);
         if (o.hidden.size() > kMaxLayers)
           throw FlagError(fmt::format("--hidden: {} layers; at most {} are supported", o.hidden.size(), kMaxLayers));
       },
       hidden_get, hidden_get, "LIST"},
      count("latent", "latent dimensions", &TrainOptions::latent, 1, kMaxLatent, true),
      {"decoder", "p(x|z): bernoulli (BCE), gaussian (squared error), gaussian-learned (per-pixel variance)",
       true, false,
       [](TrainOptions& o, const std::string& t) {
         try {
           o.decoder = models::parse_decoder(trimmed(t));
         } catch (const std::invalid_argument& e) {
           throw FlagError(std::string("--decoder: ") + e.what());
         }
       },
       decoder_get, decoder_get, "KIND"},
      {"arch", "networks: mlp (the --hidden widths) or conv (convolutions, for images whose sides divide by 4)",
       true, false,
       [](TrainOptions& o, const std::string& t) {
         try {
           o.arch = models::parse_arch(trimmed(t));
         } catch (const std::invalid_argument& e) {
           throw FlagError(std::string("--arch: ") + e.what());
         }
       },
       [](const TrainOptions& o) { return models::to_string(o.arch); },
       [](const TrainOptions& o) { return models::to_string(o.arch); }, "KIND", "mlp"},
      real("beta", "weight of the KL term (beta-VAE)", &TrainOptions::beta, 0, 1e6, true),
      real("kl-warmup", "epochs over which beta rises linearly from 0", &TrainOptions::kl_warmup, 0, 1e6, true),
      flag("binarize", "dynamically binarize pixels (1 with probability p/255, redrawn each epoch)",
           &TrainOptions::binarize, true),
      {"seed", "seed for initialization, noise and shuffling", true, false,
       [](TrainOptions& o, const std::string& t) {
         o.seed = parse_count_flag("--seed", t, 0, std::numeric_limits<std::uint64_t>::max());
       },
       [](const TrainOptions& o) { return std::to_string(o.seed); },
       [](const TrainOptions& o) { return std::to_string(o.seed); }, "N"},
      count("threads", "threads for the matrix kernels (0: all cores)", &TrainOptions::threads, 0, 1024, false),
      {"allreduce", "under mpirun: 'overlapped' sums each bucket of gradients during the backward sweep, "
                    "'blocking' after it (the same result)", false, false,
       [](TrainOptions& o, const std::string& t) {
         if (trimmed(t) != "overlapped" && trimmed(t) != "blocking")
           throw FlagError(fmt::format("--allreduce: '{}' is not overlapped or blocking", t));
         o.overlap_allreduce = trimmed(t) == "overlapped";
       },
       allreduce_get, allreduce_get, "MODE"},
      real("val-split", "hold out this fraction of the training examples (seeded) and report on it; "
                        "used automatically (0.1) when the data has no test split",
           &TrainOptions::val_split, 0, 0.9, true),
      {"exclude-classes", "labels left out of training, comma-separated (anomaly detection)", true, false,
       [](TrainOptions& o, const std::string& t) {
         o.exclude_classes = trimmed(t).empty() ? std::vector<std::size_t>{}
                                                : parse_list_flag("--exclude-classes", t, 0, kMillion);
       },
       classes_get, classes_get, "LIST"},
      absent_means("0", flag("conditional", "a conditional VAE: each example's class (the data's labels) enters "
                                            "the encoder and the decoder, and vae sample --label K draws that class",
                             &TrainOptions::conditional, true)),
      text("out", "output folder", &TrainOptions::out),
      text("resume", "continue from a checkpoint.safetensors written by vae train", &TrainOptions::resume),
      flag("force", "overwrite a finished run in --out; resume on data other than the checkpoint's",
           &TrainOptions::force, false),
      flag("keep-best", "also write best.safetensors: the weights of the epoch with the lowest evaluation loss "
                        "(test split, or validation with --val-split)", &TrainOptions::keep_best, false),
      count("patience", "stop early after N epochs without a lower evaluation loss (0: never); implies --keep-best",
            &TrainOptions::patience, 0, kMillion, false),
      count("iwae", "after training, the importance-weighted test NLL with K samples (0: skip)",
            &TrainOptions::iwae, 0, kMillion, false),
      count("eval-batch", "examples per evaluation batch (default for --arch conv: the training batch, to bound memory)", &TrainOptions::eval_batch, 1, kMillion, false),
  };
}

}  // namespace

std::size_t parse_count_flag(const std::string& flag, const std::string& text, std::size_t lo, std::size_t hi) {
  const std::string t = trimmed(text);
  std::size_t value = 0;
  const char* end = t.data() + t.size();
  const auto [stop, error] = std::from_chars(t.data(), end, value);
  const std::string range = fmt::format("{} to {}", readable(static_cast<double>(lo)),
                                        hi == std::numeric_limits<std::size_t>::max() ? "2^64-1"
                                                                                      : readable(static_cast<double>(hi)));
  if (error == std::errc::result_out_of_range || (error == std::errc() && stop == end && (value < lo || value > hi)))
    throw FlagError(fmt::format("{}: {} is out of range; expected a whole number from {}", flag, t, range));
  if (t.empty() || error != std::errc() || stop != end)
    throw FlagError(fmt::format("{}: '{}' is not a whole number (expected {})", flag, t, range));
  return value;
}

double parse_real_flag(const std::string& flag, const std::string& text, double lo, double hi) {
  const std::string t = trimmed(text);
  double value = 0;
  const char* end = t.data() + t.size();
  // Checkpoints store reals as hex floats ("0x1.0624dd2f1a9fcp-10"), which round-trip exactly.
  const bool hex = t.rfind("0x", 0) == 0;
  const auto [stop, error] = std::from_chars(t.data() + (hex ? 2 : 0), end, value,
                                             hex ? std::chars_format::hex : std::chars_format::general);
  if (t.empty() || error == std::errc::invalid_argument || stop != end)
    throw FlagError(fmt::format("{}: '{}' is not a number", flag, t));
  if (error != std::errc() || !std::isfinite(value) || value < lo || value > hi)
    throw FlagError(fmt::format("{}: {} is out of range; expected a number from {} to {}", flag, t, readable(lo),
                                readable(hi)));
  return value;
}

std::vector<std::size_t> parse_list_flag(const std::string& flag, const std::string& text, std::size_t lo,
                                         std::size_t hi) {
  std::vector<std::size_t> values;
  if (!text.empty() && text.back() == ',') throw FlagError(fmt::format("{}: '{}' ends with a comma", flag, text));
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) values.push_back(parse_count_flag(flag, item, lo, hi));
  if (values.empty()) throw FlagError(fmt::format("{}: expected a comma-separated list, got '{}'", flag, text));
  return values;
}

const std::vector<OptionRow>& train_option_table() {
  static const std::vector<OptionRow> table = make_table();
  return table;
}

const OptionRow& option_row(const std::string& name) {
  for (const OptionRow& row : train_option_table())
    if (row.name == name) return row;
  throw std::logic_error("no training option named " + name);
}

void set_option(TrainOptions& o, const std::string& name, const std::string& text) { option_row(name).set(o, text); }

std::string option_text(const TrainOptions& o, const std::string& name) { return option_row(name).get(o); }

}  // namespace tools
