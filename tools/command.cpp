#include "tools/command.hpp"

#include <algorithm>
#include <limits>
#include <sstream>
#include <system_error>

#include <fmt/format.h>

#include "datasets/error.hpp"
#include "datasets/source.hpp"
#include "distributed/communicator.hpp"
#include "models/vae_file.hpp"
#include "tools/closed_streams.hpp"
#include "tools/interrupt.hpp"
#include "tools/shape_text.hpp"
#include "tools/training_data.hpp"
#include "tools/vae_training.hpp"

namespace fs = std::filesystem;

namespace tools {

Failure describe_failure(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const FlagError& e) {
    return {2, fmt::format("error: {}", e.what())};
  } catch (const TrainingDiverged& e) {
    return {3, e.what()};
  } catch (const TrainingInterrupted& e) {
    return {128 + e.signal_number, e.what()};
  } catch (const std::bad_alloc&) {
    return {1, "error: out of memory"};
  } catch (const std::exception& e) {
    return {1, fmt::format("error: {}", e.what())};
  } catch (...) {
    return {1, "error: an unknown exception"};
  }
}

int run_reporting_errors(const char* program, const std::function<void()>& body) {
  try {
    body();
    return 0;
  } catch (const AlreadyReported& r) {
    return r.exit_code;
  } catch (...) {
    const Failure f = describe_failure(std::current_exception());
    fmt::print(stderr, "{}: {}\n", program, f.message);
    return f.exit_code;
  }
}

int report_parse_error(CLI::App& app, const CLI::ParseError& e, bool training) {
  if (!training) return app.exit(e) == 0 ? 0 : 2;
  if (e.get_exit_code() == 0) {  // --help: every rank would print the same page
    if (distributed::launched_rank() == 0) app.exit(e);
    return 0;
  }
  std::ostringstream out, err;
  app.exit(e, out, err);
  return report_before_training(2, out.str() + err.str());
}

namespace {

bool blank(const std::string& text) { return text.find_first_not_of(" \t") == std::string::npos; }

// CLI11 reads "--lr=" as "--lr" and takes the next argument for its value ("--lr= --epochs 5"
// set the rate to "--epochs"): a flag written with '=' and nothing after it is an error.
void refuse_empty_equals(const std::vector<std::string>& args) {
  for (const std::string& arg : args) {
    if (arg == "--") return;  // (what follows is positional)
    if (arg.starts_with("--") && arg.size() > 3 && arg.back() == '=' && arg.find('=') == arg.size() - 1)
      throw FlagError(fmt::format("{}: the value is empty", arg.substr(0, arg.size() - 1)));
  }
}

// An empty value ("--label ''") was taken by some flags as if the flag were not there (--label,
// --label-names, --exclude-classes): every option given a blank value is an error naming it.
// A switch given a value takes true, false, 1 or 0 only: CLI11 read "--force=2" as true.
void check_given_values(const CLI::App& app) {
  for (const CLI::Option* option : app.get_options()) {
    if (option->count() == 0) continue;
    const bool is_switch = option->get_expected_max() == 0;  // (add_flag: no value expected)
    for (const std::string& value : option->results()) {
      if (is_switch && value != "true" && value != "false" && value != "1" && value != "0")
        throw FlagError(fmt::format("{}: '{}' is not true or false", option->get_name(), value));
      if (!is_switch && blank(value)) throw FlagError(fmt::format("{}: the value is empty", option->get_name()));
    }
  }
  for (const CLI::App* sub : app.get_subcommands()) check_given_values(*sub);
}

}  // namespace

std::optional<int> parse_command_line(CLI::App& app, std::vector<std::string> args, const std::string& section,
                                      const char* program, bool training) {
  // The name a message starts with: "vae sample", or the program of its own ("train_vae").
  const std::string command =
      section.empty() || std::string(program) != "vae" ? std::string(program) : std::string(program) + " " + section;
  open_closed_standard_streams(command.c_str(),
                               training ? " (the figures of each epoch are in metrics.csv in --out)" : "");
  const auto report = [&](const FlagError& e) {
    const std::string message = fmt::format("{}: error: {}\n", command, e.what());
    if (training) return report_before_training(2, message);
    fmt::print(stderr, "{}", message);
    return 2;
  };
  try {
    refuse_empty_equals(args);
    args = with_config_file(args, section, app);
  } catch (const FlagError& e) {
    return report(e);
  }
  std::reverse(args.begin(), args.end());  // CLI11 takes the arguments last first
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return report_parse_error(app, e, training);
  }
  try {
    check_given_values(app);
  } catch (const FlagError& e) {
    return report(e);
  }
  return std::nullopt;
}

// ---- flags from the options table ----

TableFlags::TableFlags(CLI::App& app, const std::vector<std::string>& names) {
  const TrainOptions defaults;
  for (const OptionRow& row : train_option_table()) {
    if (!names.empty() && std::find(names.begin(), names.end(), row.name) == names.end()) continue;
    auto entry = std::make_unique<Entry>();
    entry->row = &row;
    if (row.is_flag) {
      entry->option = app.add_flag("--" + row.name, row.help);
    } else {
      entry->option = app.add_option("--" + row.name, entry->text, row.help);
      entry->option->default_str(row.show(defaults))->type_name(row.type);
    }
    entries_.push_back(std::move(entry));
  }
}

void TableFlags::apply(TrainOptions& o) const {
  for (const auto& e : entries_) {
    if (e->option->count() == 0) continue;
    // A switch's own text ("true" when bare): CLI11 would read "--binarize=2" (or a config's
    // "binarize = 2") as true, which the row refuses.
    e->row->set(o, e->row->is_flag ? e->option->results().back() : e->text);
    o.given.push_back(e->row->name);
  }
}

DataFlags::DataFlags(CLI::App& app) : table(app, kDataOptionNames) {
  app.add_option("--split", split, "train or test (default: test where the data has one, else train)");
}

DataOptions DataFlags::options() const {
  TrainOptions o;
  table.apply(o);
  o.data.split = split.empty() ? (datasets::has_split(o.data.data, "test") ? "test" : "train") : split;
  return o.data;
}

namespace {

// `d` (described by `source`) is what `model` reads: as many features, the same example shape
// where both have one, values in [0, 1] for a Bernoulli decoder.
void check_model_reads(const datasets::Dataset& d, const LoadedModel& model, const fs::path& data,
                       const std::string& split) {
  const std::string source = fmt::format("{} ({} split)", data.string(), split);
  const std::vector<std::size_t>& want = model.example.shape;
  const std::size_t features = model.model->config().input_dim;
  const bool flat = d.example_shape().size() == 1;
  if (d.features() != features || (!flat && want.size() > 1 && d.example_shape() != want))
    throw datasets::DataError(fmt::format("{}: examples of shape {}, but the model reads {}", source,
                                          layout_text({d.example_shape(), d.channels_first()}, d.features()),
                                          layout_text(model.example, features)));
  check_bernoulli_range(d, model.model->config().decoder, data.string(), split,
                        "this model's is one, so its figures would mean nothing");
}

}  // namespace

datasets::Dataset DataFlags::load(const LoadedModel& model) const {
  datasets::Dataset d = load_data_split(options());
  // An image folder numbers its classes by its own subfolders: one lacking a class of the
  // model's (evaluate --data tree/test) gave each class after it the label of the one before.
  d.number_classes_as(model.label_names);
  check_model_reads(d, model, options().data, options().split);
  return d;
}

datasets::Dataset DataFlags::load_other(const fs::path& data, const LoadedModel& model) const {
  DataOptions o = options();
  o.data = data;
  o.limit = 0;
  if (!datasets::has_split(data, o.split)) o.split = "train";
  datasets::Dataset d = load_data_split(o);
  d.number_classes_as(model.label_names);  // (as load's)
  check_model_reads(d, model, data, o.split);
  return d;
}

std::string layout_text(const ExampleLayout& example, std::optional<std::size_t> values) {
  const std::optional<ImageShape> image = image_shape(example.shape);
  const bool channels_first = example.channels_first && image;
  std::vector<std::string> notes;
  if (channels_first) notes.push_back("channels first");
  if (values) notes.push_back(fmt::format("{} values", *values));
  const std::string note = notes.empty() ? "" : fmt::format(" ({})", fmt::join(notes, "; "));
  if (!channels_first) return fmt::format("[{}]{}", shape_text(example.shape), note);
  const std::size_t channels = example.shape.size() == 3 ? example.shape[2] : 1;
  return fmt::format("[{},{},{}]{}", channels, example.shape[0], example.shape[1], note);
}

std::string DataFlags::describe() const {
  const DataOptions o = options();
  return fmt::format("{} ({} split)", o.data.string(), o.split);
}

// ---- models ----

void add_model_argument(CLI::App& app, std::string& path) {
  app.add_option("CKPT", path, "model.safetensors or checkpoint.safetensors written by vae train")->required();
}

LoadedModel load_model(const fs::path& path) {
  const nn::SafetensorsFile file = nn::SafetensorsFile::load(path);
  LoadedModel m;
  m.model = load_model_file(file);
  m.metadata = file.metadata();
  const std::size_t input_dim = m.model->config().input_dim;
  m.example.shape = {input_dim};
  if (auto it = m.metadata.find("example_shape"); it != m.metadata.end()) {
    std::vector<std::size_t> shape;
    try {
      shape = parse_shape_text(it->second);
    } catch (const std::invalid_argument& e) {
      throw nn::SafetensorsError(fmt::format("{}: metadata {}", path.string(), e.what()));
    }
    // Multiplied with an overflow check: [2^63 + 32, 2] must not pass for 64 values.
    std::size_t product = 1;
    for (std::size_t d : shape)
      product = d != 0 && product > std::numeric_limits<std::size_t>::max() / d ? 0 : product * d;
    if (!shape.empty() && product == input_dim) m.example.shape = shape;
  }
  if (const models::VaeConfig& c = m.model->config(); c.arch == models::Arch::conv) {
    // A conv model computes on its own image size; data of another shape with as many values
    // would be read as wrong images.
    const std::optional<ImageShape> said = image_shape(m.example.shape);
    if (said && (said->channels != c.image.channels || said->height != c.image.height || said->width != c.image.width))
      throw nn::SafetensorsError(fmt::format("{}: metadata example_shape [{}] is not the conv model's image {}x{}x{}",
                                             path.string(), shape_text(m.example.shape), c.image.channels,
                                             c.image.height, c.image.width));
    if (!said)
      m.example.shape = c.image.channels == 1 ? std::vector<std::size_t>{c.image.height, c.image.width}
                                              : std::vector<std::size_t>{c.image.height, c.image.width, c.image.channels};
  }
  if (auto it = m.metadata.find("channels_first"); it != m.metadata.end())
    m.example.channels_first = it->second == "true" && image_shape(m.example.shape).has_value();
  if (auto it = m.metadata.find("label_names"); it != m.metadata.end() && !it->second.empty()) {
    std::stringstream in(it->second);
    for (std::string line; std::getline(in, line);) m.label_names.push_back(line);
  }
  return m;
}

OverwriteFlag::OverwriteFlag(CLI::App& app) {
  app.add_flag("--force", force, "replace output files that already exist");
}

void OverwriteFlag::claim(const fs::path& path) const {
  std::error_code ec;
  if (!force && fs::exists(path, ec))
    throw std::invalid_argument(
        fmt::format("{} already exists; pass --force to replace it, or choose another --out", path.string()));
}

LabelFlag::LabelFlag(CLI::App& app, const std::string& help) {
  app.add_option("--label", text, help)->type_name("K");
}

std::optional<std::int32_t> LabelFlag::get(const Model& model) const {
  if (text.empty()) return std::nullopt;
  if (!model.conditional())
    throw FlagError("--label: this model has no classes (it was trained without --conditional)");
  return static_cast<std::int32_t>(parse_count_flag("--label", text, 0, model.num_classes() - 1));
}

std::vector<std::int32_t> LabelFlag::required(const Model& model, std::size_t n, const char* what) const {
  const std::optional<std::int32_t> k = get(model);
  if (!model.conditional()) return {};
  if (!k)
    throw FlagError(fmt::format("--label: the model is conditional ({} classes); say which class to {} with --label K",
                                model.num_classes(), what));
  return std::vector<std::int32_t>(n, *k);
}

std::vector<std::int32_t> LabelFlag::of(const Model& model, const datasets::Dataset& d, const std::string& source) const {
  const std::optional<std::int32_t> k = get(model);
  if (!model.conditional()) return {};
  if (k) return std::vector<std::int32_t>(d.size(), *k);
  if (!d.has_labels())
    throw datasets::DataError(fmt::format("{} has no labels, and the model is conditional ({} classes): give labelled "
                                          "data, or --label K where the command takes it",
                                          source, model.num_classes()));
  const std::size_t classes = model.num_classes();
  for (std::size_t i = 0; i < d.size(); ++i)
    if (!is_class(d.label(i), classes))
      throw datasets::DataError(fmt::format("{}: example {}: label {} is not one of the model's {}; "
                                            "give data labelled as the model's training data, or --label K",
                                            source, i + 1, d.label(i), classes_text(classes)));
  return {d.labels().begin(), d.labels().end()};
}

std::span<const std::int32_t> label_rows(std::span<const std::int32_t> labels, std::size_t begin, std::size_t end) {
  return labels.empty() ? labels : labels.subspan(begin, end - begin);
}

}  // namespace tools
