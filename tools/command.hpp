// What every `vae` subcommand shares: its registration, the flags taken from the options
// table, exit codes, reading a model; and (tools/array_files.hpp, included here) writing
// arrays by the extension of --out.
//
// A subcommand is one file defining `Command add_<name>_command(CLI::App& vae)`: it adds a
// CLI11 subcommand with its flags and returns the function that runs it after parsing.
#pragma once

#include <exception>
#include <filesystem>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <xtensor/xview.hpp>

#include "autograd/array.hpp"
#include "datasets/dataset.hpp"
#include "models/vae.hpp"
#include "nn/safetensors.hpp"
#include "tools/array_files.hpp"
#include "tools/config_file.hpp"
#include "tools/model.hpp"
#include "tools/options.hpp"
#include "tools/run_pictures.hpp"

namespace tools {

struct Command {
  CLI::App* app;
  std::function<void()> run;
};

Command add_train_command(CLI::App& vae);
Command add_sample_command(CLI::App& vae);
Command add_encode_command(CLI::App& vae);
Command add_decode_command(CLI::App& vae);
Command add_reconstruct_command(CLI::App& vae);
Command add_interpolate_command(CLI::App& vae);
Command add_traverse_command(CLI::App& vae);
Command add_score_command(CLI::App& vae);
Command add_evaluate_command(CLI::App& vae);
Command add_info_command(CLI::App& vae);

/// Adds the training flags (every row of the options table, --no-progress, --config) to
/// `app`; the returned function runs the training after parsing.
std::function<void()> add_training_flags(CLI::App& app);

/// What an error prints after the program's name ("error: ..."), and its exit code: 2 for a
/// FlagError, 3 for a diverged training, 1 for anything else. exit_code 0: no error.
struct Failure {
  int exit_code = 0;
  std::string message;
};
Failure describe_failure(std::exception_ptr error);

/// Thrown by a rank of an MPI run whose error was already printed (by rank 0): exit quietly.
struct AlreadyReported {
  int exit_code;
};

/// Runs `body`, turning exceptions into a message on stderr ("program: error: ...") and the
/// exit code of describe_failure (AlreadyReported: its code, printing nothing).
int run_reporting_errors(const char* program, const std::function<void()>& body);

/// main's answer to a command line CLI11 refused (or --help): the exit code. For `vae train`
/// under mpirun (`training`), printed once for all ranks (report_before_training).
int report_parse_error(CLI::App& app, const CLI::ParseError& e, bool training);

/// main's parsing: the arguments (argv without the program name), the entries of a --config
/// file added (with_config_file, its [section]), parsed by `app`. Returns the exit code when
/// main should stop there (a bad flag or file, reported as `program: error: ...`, or --help
/// shown); none when the parsed command should run. `training`: as report_parse_error.
std::optional<int> parse_command_line(CLI::App& app, std::vector<std::string> args, const std::string& section,
                                      const char* program, bool training);

/// Rows of the options table as flags of `app` (their text kept until apply()).
class TableFlags {
 public:
  TableFlags(CLI::App& app, const std::vector<std::string>& names);
  /// Sets the flags the user gave (command line or config file) through the validation
  /// layer, and records their names in o.given.
  void apply(TrainOptions& o) const;

 private:
  struct Entry {
    const OptionRow* row;
    std::string text;
    CLI::Option* option = nullptr;
  };
  std::vector<std::unique_ptr<Entry>> entries_;
};

struct LoadedModel;

/// A subcommand's data flags: --data --split --limit --label-column --channels --label-names.
struct DataFlags {
  explicit DataFlags(CLI::App& app);
  /// The options they give (the split resolved). Throws FlagError.
  DataOptions options() const;
  /// The split they select, loaded, and checked to be what `model` reads: as many features,
  /// and the same example shape where both have one (flat rows of the right length pass).
  /// Throws FlagError / datasets::DataError.
  datasets::Dataset load(const LoadedModel& model) const;
  /// Other data read with the same flags (its --split if it has that split, else train; no
  /// --limit), checked the same way.
  datasets::Dataset load_other(const std::filesystem::path& data, const LoadedModel& model) const;
  std::string describe() const;

  TableFlags table;
  std::string split;  // empty: test where the data has one, else train
};

/// The shape as the user's files hold it: "[C,H,W] (channels first)" for images read
/// channels first, else "[H,W,C]" (or "[D]"); with `values`, "[C,H,W] (channels first; N values)".
std::string layout_text(const ExampleLayout& example, std::optional<std::size_t> values = {});

/// A model read back from a model.safetensors or checkpoint.safetensors.
struct LoadedModel {
  std::unique_ptr<Model> model;  // the VAE, or a conditional VAE
  nn::Metadata metadata;
  ExampleLayout example;  // shape {features} when the file does not say
  std::vector<std::string> label_names;
};
LoadedModel load_model(const std::filesystem::path& path);

/// The CKPT positional argument every model subcommand takes first.
void add_model_argument(CLI::App& app, std::string& path);

/// --force: a subcommand's outputs replace files already there. Without it a subcommand
/// refuses, before any work, to write over a file (the one --out names, and those it writes
/// beside it): nothing a user has is replaced silently.
struct OverwriteFlag {
  explicit OverwriteFlag(CLI::App& app);
  /// Throws (exit 1) if `path` exists and --force was not given.
  void claim(const std::filesystem::path& path) const;

  bool force = false;
};

/// --label K: the class a conditional model is given (for every draw, code or example).
struct LabelFlag {
  LabelFlag(CLI::App& app, const std::string& help);
  /// K, checked to be one of the model's classes; none if not given. FlagError for a model
  /// without classes, or a K it does not have.
  std::optional<std::int32_t> get(const Model& model) const;
  /// K, which a conditional model needs here (`what` says what for); none for a plain model.
  std::vector<std::int32_t> required(const Model& model, std::size_t n, const char* what) const;
  /// The classes of d's examples: K for each if given, else their labels; none for a plain model.
  /// DataError naming `source` (where d came from) if d has no labels or one the model lacks.
  std::vector<std::int32_t> of(const Model& model, const datasets::Dataset& d, const std::string& source) const;

  std::string text;
};

/// labels[begin, end), or none when there are none (a plain model's).
std::span<const std::int32_t> label_rows(std::span<const std::int32_t> labels, std::size_t begin, std::size_t end);

}  // namespace tools
