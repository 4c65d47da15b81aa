// The one table of training options and the one layer that validates them.
//
// Every option is one row of train_option_table(): its name (the flag without "--"), its
// help, whether a checkpoint pins it, and how its value is read from text (with its bounds)
// and written back. That row drives the CLI (`vae train`, `train_vae`), the TOML config file
// (CLI11 hands the same text), the options stored in a checkpoint's metadata and their
// validation when a run resumes: a value is checked in one place, wherever it came from.
//
//   TrainOptions o;
//   set_option(o, "batch", "64");          // throws FlagError "--batch: ..." if out of range
//   option_text(o, "batch");               // "64"
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "models/vae.hpp"

namespace tools {

inline const char* kDefaultDataDir = "/usr/share/datasets/fashion-mnist";

/// A value a user gave that is not acceptable (a flag, a config-file entry): exit code 2.
/// The message starts with the flag, e.g. "--batch: 0 is out of range (1 to 1,000,000)".
class FlagError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// Where the examples come from and which of them are used (train and every subcommand).
struct DataOptions {
  std::filesystem::path data = kDefaultDataDir;
  std::string split = "test";        // subcommands: which split to read (train | test)
  std::size_t limit = 0;             // 0: every example
  std::size_t label_column = 0;      // CSV: 1-based column holding the label; 0: no labels
  std::size_t channels = 1;          // image folders: 1 (gray) or 3 (RGB)
  std::filesystem::path label_names;  // a text file, one class name per line
};

/// The rows of the table that set DataOptions: every subcommand's data flags, and the keys it
/// takes from the top of a training config file.
inline const std::vector<std::string> kDataOptionNames = {"data", "limit", "label-column", "channels", "label-names"};

/// The learning rate over a run: --lr throughout, or half a cosine from --lr down to 0.
enum class LrSchedule { constant, cosine };

struct TrainOptions {
  DataOptions data;
  std::size_t epochs = 10;  // total: a resumed run continues up to this many
  std::size_t batch = 128;
  double lr = 1e-3;
  LrSchedule lr_schedule = LrSchedule::constant;
  std::size_t cosine_epochs = 0;  // the cosine's length; 0: --epochs of the run that starts it
  double lr_warmup = 0.0;     // epochs over which the learning rate rises linearly from 0
  double weight_decay = 0.0;  // > 0: AdamW's decoupled weight decay
  double clip_grad = 0.0;     // > 0: the gradients' global L2 norm is clipped to this
  std::vector<std::size_t> hidden = {400};
  std::size_t latent = 20;
  models::Decoder decoder = models::Decoder::bernoulli;
  models::Arch arch = models::Arch::mlp;  // mlp, or conv for images
  double beta = 1.0;
  double kl_warmup = 0.0;  // epochs over which beta rises linearly from 0
  bool binarize = false;
  std::uint64_t seed = 1;
  std::size_t threads = 0;  // 0: all cores
  bool overlap_allreduce = true;  // under mpirun: sum gradients during the backward sweep
  double val_split = 0.0;   // fraction of the training examples held out for validation
  std::vector<std::size_t> exclude_classes;  // labels left out of training
  bool conditional = false;                  // a conditional VAE: the class enters encoder and decoder
  std::filesystem::path out = "runs/vae";
  std::filesystem::path resume;  // a checkpoint.safetensors, or empty
  bool force = false;            // overwrite a finished run in --out / resume on other data
  std::size_t iwae = 0;          // K for the importance-weighted test NLL; 0: skip
  bool keep_best = false;        // best.safetensors: the weights of the epoch with the lowest evaluation loss
  std::size_t patience = 0;      // > 0: stop after this many epochs without a lower evaluation loss
  std::size_t eval_batch = 500;
  bool progress = true;  // a progress bar when stderr is a terminal
  /// Names of the options the user set explicitly (a resumed run checks them).
  std::vector<std::string> given;
};

/// One row of the table. `set` parses and validates (throwing FlagError naming the flag);
/// `get` gives the canonical text (exact for reals) that `set` reads back.
struct OptionRow {
  std::string name;
  std::string help;
  bool pinned;  // stored in checkpoints; a resumed run must agree
  bool is_flag;  // a switch without a value
  std::function<void(TrainOptions&, const std::string&)> set;
  std::function<std::string(const TrainOptions&)> get;
  std::function<std::string(const TrainOptions&)> show;  // for people: "0.001", not hex
  std::string type = "VALUE";  // what --help shows: N, X, PATH, LIST
  // For a pinned option added after checkpoints were first written: the value that a checkpoint
  // without it was trained with. Empty: the option was always stored, and a checkpoint lacking
  // it is refused.
  std::string absent_means = {};
};

const std::vector<OptionRow>& train_option_table();
const OptionRow& option_row(const std::string& name);
void set_option(TrainOptions& o, const std::string& name, const std::string& text);
std::string option_text(const TrainOptions& o, const std::string& name);

// The parsers of the validation layer, shared with the subcommands' own flags. Each throws
// FlagError("--<flag>: ...") naming the accepted range in readable numbers.
std::size_t parse_count_flag(const std::string& flag, const std::string& text, std::size_t lo, std::size_t hi);
double parse_real_flag(const std::string& flag, const std::string& text, double lo, double hi);
std::vector<std::size_t> parse_list_flag(const std::string& flag, const std::string& text, std::size_t lo,
                                         std::size_t hi);

/// Largest accepted layer width and latent size: a model must fit in memory, and a
/// checkpoint's metadata must not be able to ask for more.
inline constexpr std::size_t kMaxWidth = 16384;
inline constexpr std::size_t kMaxLatent = 4096;
inline constexpr std::size_t kMaxLayers = 16;

}  // namespace tools
