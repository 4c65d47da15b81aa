#include "tools/array_files.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <stdexcept>
#include <unistd.h>

#include <fmt/format.h>
#include <xtensor/xadapt.hpp>
#include <xtensor/xnpy.hpp>

#include "datasets/csv.hpp"
#include "datasets/error.hpp"
#include "datasets/idx.hpp"
#include "datasets/npy.hpp"
#include "nn/atomic_file.hpp"
#include "tools/options.hpp"
#include "tools/run_pictures.hpp"
#include "tools/shape_text.hpp"

namespace fs = std::filesystem;

namespace tools {

void write_text(const fs::path& path, const std::string& text) {
  nn::write_file_atomically(path, [&](const nn::ByteSink& write) { write(text.data(), text.size()); });
}

std::string extension_of(const fs::path& path) {
  std::string name = path.filename().string();
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* ext : {".npy", ".csv", ".png", ".idx", ".gz"})
    if (name.size() > std::strlen(ext) && name.ends_with(ext)) return ext;
  if (name.ends_with("-ubyte") || name.ends_with("-float")) return ".idx";
  return path.extension().string();
}

void check_extension(const std::string& flag, const fs::path& path, const std::vector<std::string>& allowed) {
  const std::string ext = extension_of(path);
  if (std::find(allowed.begin(), allowed.end(), ext) == allowed.end())
    throw FlagError(fmt::format("{}: '{}' should end in {}", flag, path.string(), fmt::join(allowed, ", ")));
}

namespace {

// The array a .npy or IDX file holds: [N, ...example shape], or [N, C, H, W] for images whose
// data came channels first; [N, D] if the shape does not fit the rows.
xt::xarray<float> file_array(const ag::Array& values, const ExampleLayout& example) {
  const std::size_t n = values.shape()[0], d = values.shape()[1];
  std::vector<std::size_t> shape = {n};
  std::size_t product = 1;
  for (std::size_t s : example.shape) product *= s;
  if (product == d) shape.insert(shape.end(), example.shape.begin(), example.shape.end());
  else shape.push_back(d);
  xt::xarray<float> out = xt::adapt(values.data(), values.size(), xt::no_ownership(), shape);
  const std::optional<ImageShape> image = image_shape(example.shape);
  if (!example.channels_first || !image || product != d) return out;
  if (shape.size() == 3) return xt::xarray<float>(xt::expand_dims(out, 1));  // gray [N, H, W] -> [N, 1, H, W]
  return xt::xarray<float>(xt::transpose(out, {0, 3, 1, 2}));
}

}  // namespace

void write_array(const fs::path& path, const ag::Array& values, const ExampleLayout& example, std::size_t cols,
                 const std::vector<std::string>& columns) {
  const std::size_t n = values.shape()[0], d = values.shape()[1];
  const std::string ext = extension_of(path);
  if (ext == ".npy") {
    write_text(path, xt::dump_npy(file_array(values, example)));
  } else if (ext == ".csv") {
    std::string text;
    for (std::size_t j = 0; j < d; ++j)
      text += (j ? "," : "") + (j < columns.size() ? columns[j] : fmt::format("x{}", j));
    text += '\n';
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t j = 0; j < d; ++j) text += fmt::format("{}{}", j ? "," : "", values(i, j));
      text += '\n';
    }
    write_text(path, text);
  } else if (ext == ".png") {
    const std::optional<ImageShape> shape = image_shape(example.shape);
    if (!shape)
      throw FlagError(fmt::format("{}: examples of shape [{}] are not images; write .npy or .csv instead",
                                  path.string(), shape_text(example.shape)));
    if (!write_image_grid(path, values, *shape, cols))  // the output asked for, not a run's extra picture
      throw std::runtime_error(fmt::format("{}: not written, the picture would be too large; write .npy, .idx or "
                                           ".csv instead", path.string()));
  } else if (ext == ".idx" || ext == ".gz") {
    const xt::xarray<float> out = file_array(values, example);
    datasets::IdxArray array(std::vector<std::size_t>(out.shape().begin(), out.shape().end()),
                             std::vector<float>(out.begin(), out.end()));
    // write_idx writes in place, so it writes a temporary that is renamed over the target.
    const fs::path temporary = path.string() + fmt::format(".tmp-{}", ::getpid());
    try {
      datasets::write_idx(temporary, array, ext == ".gz" ? datasets::Compression::gzip : datasets::Compression::none);
      fs::rename(temporary, path);
    } catch (...) {
      std::error_code ec;
      fs::remove(temporary, ec);
      throw;
    }
  } else {
    throw FlagError(fmt::format("--out: cannot tell the format of '{}'; use .npy, .csv, .png or .idx", path.string()));
  }
}

ag::Array read_matrix(const fs::path& path) {
  const std::string ext = extension_of(path);
  datasets::Dataset d;
  if (ext == ".npy") d = datasets::read_npy_dataset(path);
  else if (ext == ".csv") d = datasets::read_csv_dataset(path);
  else throw FlagError(fmt::format("LATENTS: '{}' should be a .npy or .csv file", path.string()));
  if (d.size() == 0) throw datasets::DataError(fmt::format("{}: holds no rows", path.string()));
  return rows_of(d, 0, d.size());
}

ag::Array rows_of(const datasets::Dataset& d, std::size_t begin, std::size_t end) {
  ag::Array out({end - begin, d.features()});
  for (std::size_t i = begin; i < end; ++i) d.row_to_floats(i, &out(i - begin, 0));
  return out;
}

}  // namespace tools
