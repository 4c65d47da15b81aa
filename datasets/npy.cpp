#include "datasets/npy.hpp"

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include <fmt/format.h>
#include <xtensor/xnpy.hpp>

#include "datasets/error.hpp"

namespace datasets {
namespace {

constexpr std::string_view kMagic = "\x93NUMPY";

std::size_t word_size(const std::string& dtype) {
  if (dtype.size() < 3) return 0;
  std::size_t n = 0;
  for (char c : dtype.substr(2)) {
    if (c < '0' || c > '9' || n > 8) return 0;
    n = n * 10 + static_cast<std::size_t>(c - '0');
  }
  return n;
}

// The values after a checked header. (xt::load_npy reads the header length through a
// signed char, so headers of 128..255 bytes, which numpy writes for long shapes, come out
// wrong; the header is parsed by xnpy above and the data copied here.)
template <class T>
std::vector<T> load_values(std::string_view bytes, const NpyHeader& h) {
  std::vector<T> values((bytes.size() - h.data_offset) / sizeof(T));
  std::memcpy(values.data(), bytes.data() + h.data_offset, values.size() * sizeof(T));
  return values;
}

}  // namespace

NpyHeader parse_npy_header(std::string_view bytes, const std::string& source) {
  if (bytes.size() < 10 || bytes.substr(0, kMagic.size()) != kMagic)
    throw DataError(fmt::format("{}: not an .npy file (it does not start with \\x93NUMPY)", source));
  const auto major = static_cast<unsigned char>(bytes[6]);
  std::size_t length = 0, start = 0;
  if (major == 1) {
    length = static_cast<unsigned char>(bytes[8]) | (static_cast<std::size_t>(static_cast<unsigned char>(bytes[9])) << 8);
    start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) throw DataError(fmt::format("{}: truncated .npy header", source));
    for (int i = 3; i >= 0; --i) length = (length << 8) | static_cast<unsigned char>(bytes[8 + static_cast<std::size_t>(i)]);
    start = 12;
  } else {
    throw DataError(fmt::format("{}: .npy format version {} is not supported (1, 2 or 3)", source, major));
  }
  if (length > bytes.size() - start)
    throw DataError(fmt::format("{}: the .npy header claims {} bytes, the file has {} after byte {}", source, length,
                                bytes.size() - start, start));
  std::string header(bytes.substr(start, length));
  std::string compact;
  for (char c : header)
    if (c != ' ' && c != '\n') compact += c;
  if (header.empty() || header.back() != '\n' || compact.size() < 2 || compact.front() != '{' || compact.back() != '}' ||
      compact.find("'descr':'") == std::string::npos || compact.find("'shape':(") == std::string::npos)
    throw DataError(fmt::format("{}: malformed .npy header '{}'", source, compact));
  NpyHeader h;
  bool fortran = false;
  try {
    xt::detail::parse_header(header, h.dtype, &fortran, h.shape);
  } catch (const std::exception& e) {
    throw DataError(fmt::format("{}: malformed .npy header '{}': {}", source, compact, e.what()));
  }
  if (fortran) throw DataError(fmt::format("{}: Fortran-order .npy files are not supported; save in C order", source));
  const std::size_t word = word_size(h.dtype);
  if (word == 0 || (h.dtype[0] != '<' && h.dtype[0] != '|'))
    throw DataError(fmt::format("{}: dtype '{}' is not supported (little-endian numbers only)", source, h.dtype));
  std::size_t count = 1;
  for (std::size_t d : h.shape) {
    if (d != 0 && count > std::numeric_limits<std::size_t>::max() / word / d)
      throw DataError(fmt::format("{}: the shape ({}) is too large", source, fmt::join(h.shape, ", ")));
    count *= d;
  }
  h.data_offset = start + length;
  const std::size_t have = bytes.size() - h.data_offset;
  if (count * word != have)
    throw DataError(fmt::format("{}: shape ({}) of {} needs {} bytes of data, the file has {}{}", source,
                                fmt::join(h.shape, ", "), h.dtype, count * word, have,
                                have < count * word ? " (truncated)" : ""));
  return h;
}

Dataset parse_npy_dataset(std::string_view bytes, const std::string& source) {
  const NpyHeader h = parse_npy_header(bytes, source);
  if (h.shape.empty()) throw DataError(fmt::format("{}: a scalar is not a set of examples", source));
  std::vector<std::size_t> example(h.shape.begin() + 1, h.shape.end());
  if (example.empty()) example = {1};
  std::size_t features = 1;
  for (std::size_t d : example) features *= d;
  if (features == 0) throw DataError(fmt::format("{}: examples of shape ({}) hold no values", source, fmt::join(example, ", ")));
  Dataset d;
  if (h.dtype == "|u1") {
    d = Dataset(load_values<std::uint8_t>(bytes, h), features);
  } else if (h.dtype == "<f4") {
    d = Dataset(load_values<float>(bytes, h), features);
  } else if (h.dtype == "<f8") {
    const auto values = load_values<double>(bytes, h);
    d = Dataset(std::vector<float>(values.begin(), values.end()), features);
  } else {
    throw DataError(fmt::format("{}: examples of dtype '{}' are not supported (uint8, float32 or float64)", source, h.dtype));
  }
  if (!d.holds_bytes())
    for (float v : d.floats())
      if (!std::isfinite(v)) throw DataError(fmt::format("{}: holds a non-finite value ({})", source, v));
  d.set_example_shape(example);
  return d;
}

std::vector<std::int32_t> parse_npy_labels(std::string_view bytes, const std::string& source) {
  const NpyHeader h = parse_npy_header(bytes, source);
  if (h.shape.size() != 1) throw DataError(fmt::format("{}: labels must have rank 1, found ({})", source, fmt::join(h.shape, ", ")));
  std::vector<std::int64_t> wide;
  if (h.dtype == "|u1") { auto v = load_values<std::uint8_t>(bytes, h); wide.assign(v.begin(), v.end()); }
  else if (h.dtype == "|i1") { auto v = load_values<std::int8_t>(bytes, h); wide.assign(v.begin(), v.end()); }
  else if (h.dtype == "<i4") { auto v = load_values<std::int32_t>(bytes, h); wide.assign(v.begin(), v.end()); }
  else if (h.dtype == "<i8") { auto v = load_values<std::int64_t>(bytes, h); wide.assign(v.begin(), v.end()); }
  else throw DataError(fmt::format("{}: labels of dtype '{}' are not supported (uint8, int8, int32, int64)", source, h.dtype));
  std::vector<std::int32_t> labels;
  for (std::int64_t v : wide) {
    if (v < 0 || v > std::numeric_limits<std::int32_t>::max())
      throw DataError(fmt::format("{}: label {} is out of range (0 to 2^31-1)", source, v));
    labels.push_back(static_cast<std::int32_t>(v));
  }
  return labels;
}

std::string read_file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(fmt::format("{}: cannot open the file", path.string()));
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) throw DataError(fmt::format("{}: read error", path.string()));
  return std::move(content).str();
}

Dataset read_npy_dataset(const std::filesystem::path& path) {
  Dataset d = parse_npy_dataset(read_file_bytes(path), path.string());
  const std::filesystem::path labels_path = path.parent_path() / (path.stem().string() + "-labels.npy");
  std::error_code ec;
  if (!std::filesystem::is_regular_file(labels_path, ec)) return d;
  std::vector<std::int32_t> labels = parse_npy_labels(read_file_bytes(labels_path), labels_path.string());
  if (labels.size() != d.size())
    throw DataError(fmt::format("{}: {} labels for the {} examples of {}", labels_path.string(), labels.size(),
                                d.size(), path.string()));
  const std::vector<std::size_t> shape = d.example_shape();
  if (d.holds_bytes())
    d = Dataset(std::vector<std::uint8_t>(d.bytes().begin(), d.bytes().end()), d.features(), std::move(labels));
  else
    d = Dataset(std::vector<float>(d.floats().begin(), d.floats().end()), d.features(), std::move(labels));
  d.set_example_shape(shape);
  return d;
}

}  // namespace datasets
