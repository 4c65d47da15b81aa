#include "datasets/npy.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <span>
#include <sstream>
#include <type_traits>

#include <fmt/format.h>
#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>
#include <xtensor/xnpy.hpp>

#include "datasets/error.hpp"

namespace datasets {
namespace {

constexpr std::string_view kMagic = "\x93NUMPY";

// The element type a dtype string such as "<f4", ">i2" or "|b1" names, or word 0 if it is not
// a number type read here (complex, strings, objects, dates, structured).
struct ElementType {
  char kind = 0;  // 'b' bool, 'i' signed, 'u' unsigned, 'f' float
  std::size_t word = 0;
};
ElementType element_type(const std::string& dtype) {
  // byte orders: '<' little, '>' big, '|' none, '=' the writer's own (little on every machine
  // this builds for)
  if (dtype.size() != 3 || std::string_view("<>|=").find(dtype[0]) == std::string_view::npos) return {};
  const char kind = dtype[1];
  const std::size_t word = dtype[2] >= '0' && dtype[2] <= '9' ? static_cast<std::size_t>(dtype[2] - '0') : 0;
  const bool integer_word = word == 1 || word == 2 || word == 4 || word == 8;
  const bool fits = (kind == 'b' && word == 1) || ((kind == 'i' || kind == 'u') && integer_word) ||
                    (kind == 'f' && (word == 2 || word == 4 || word == 8));
  return fits ? ElementType{kind, word} : ElementType{};
}

// IEEE half-precision bits (numpy's float16) to float, subnormals and infinities included.
float half_to_float(std::uint16_t h) {
  const std::uint32_t exponent = (h >> 10) & 0x1FU, mantissa = h & 0x3FFU;
  float magnitude;
  if (exponent == 0) magnitude = std::ldexp(static_cast<float>(mantissa), -24);  // zero or subnormal
  else if (exponent == 31) magnitude = mantissa ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  else magnitude = std::ldexp(static_cast<float>(mantissa | 0x400U), static_cast<int>(exponent) - 25);
  return (h & 0x8000U) ? -magnitude : magnitude;
}

// Element i of the data as `From`, its bytes reversed first when the file is big-endian.
template <class From>
From element(const char* data, std::size_t i, bool swap) {
  char word[sizeof(From)];
  std::memcpy(word, data + i * sizeof(From), sizeof(From));
  if (swap) std::reverse(word, word + sizeof(From));
  From v;
  std::memcpy(&v, word, sizeof(From));
  return v;
}

template <class From, class To>
void convert_as(const char* data, bool swap, std::span<To> out) {
  for (std::size_t i = 0; i < out.size(); ++i) {
    if constexpr (std::is_same_v<From, bool>) out[i] = static_cast<To>(data[i] != 0);
    else out[i] = static_cast<To>(element<From>(data, i, swap));
  }
}

// The file's values converted to To, in the file's element order, whatever its number type
// and byte order.
template <class To>
std::vector<To> values_as(std::string_view bytes, const NpyHeader& h) {
  const ElementType t = element_type(h.dtype);
  std::vector<To> out((bytes.size() - h.data_offset) / t.word);
  const char* data = bytes.data() + h.data_offset;
  const bool swap = h.dtype[0] == '>';
  const std::span<To> to(out);
  if (t.kind == 'b') convert_as<bool>(data, swap, to);
  else if (t.kind == 'i' && t.word == 1) convert_as<std::int8_t>(data, swap, to);
  else if (t.kind == 'i' && t.word == 2) convert_as<std::int16_t>(data, swap, to);
  else if (t.kind == 'i' && t.word == 4) convert_as<std::int32_t>(data, swap, to);
  else if (t.kind == 'i') convert_as<std::int64_t>(data, swap, to);
  else if (t.kind == 'u' && t.word == 1) convert_as<std::uint8_t>(data, swap, to);
  else if (t.kind == 'u' && t.word == 2) convert_as<std::uint16_t>(data, swap, to);
  else if (t.kind == 'u' && t.word == 4) convert_as<std::uint32_t>(data, swap, to);
  else if (t.kind == 'u') convert_as<std::uint64_t>(data, swap, to);
  else if (t.word == 2)
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<To>(half_to_float(element<std::uint16_t>(data, i, swap)));
  else if (t.word == 4) convert_as<float>(data, swap, to);
  else convert_as<double>(data, swap, to);
  return out;
}

// The values of a Fortran-order (column-major) array put in C (row-major) order.
template <class T>
std::vector<T> c_order(std::vector<T> values, const std::vector<std::size_t>& shape) {
  if (shape.size() < 2) return values;
  const auto column_major = xt::adapt<xt::layout_type::column_major>(values.data(), values.size(), xt::no_ownership(), shape);
  const xt::xarray<T, xt::layout_type::row_major> row_major = column_major;
  return std::vector<T>(row_major.begin(), row_major.end());
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
    throw DataError(fmt::format("{}: malformed .npy header '{}'", source, shown(compact, 200)));
  // xtensor's parser reads "(10.5, 4)" as (10, 4), "(-1, 4)" as (2^64 - 1, 4), "((10,),)" as (0,).
  const std::size_t shape_at = compact.find("'shape':(") + 9, shape_end = compact.find(')', shape_at);
  std::string shape_text = compact.substr(shape_at, shape_end == std::string::npos ? 0 : shape_end - shape_at);
  // Python 2's numpy wrote long integers with an L, (300L, 16L), which numpy still reads.
  for (std::size_t i = 1; i < shape_text.size(); ++i)
    if (shape_text[i] == 'L' && std::isdigit(static_cast<unsigned char>(shape_text[i - 1]))) shape_text.erase(i--, 1);
  if (shape_end == std::string::npos ||
      shape_text.find_first_not_of("0123456789,") != std::string::npos || shape_text.find(",,") != std::string::npos ||
      (!shape_text.empty() && shape_text.front() == ','))
    throw DataError(fmt::format("{}: malformed .npy header '{}': the shape is not a tuple of whole numbers", source,
                                shown(compact, 200)));
  NpyHeader h;
  bool fortran = false;
  try {
    xt::detail::parse_header(header, h.dtype, &fortran, h.shape);
  } catch (const std::exception& e) {
    throw DataError(fmt::format("{}: malformed .npy header '{}': {}", source, shown(compact, 200), e.what()));
  }
  h.fortran_order = fortran;
  const std::size_t word = element_type(h.dtype).word;
  if (word == 0)
    throw DataError(fmt::format("{}: dtype '{}' is not a number type read here (bool, int8 to int64, uint8 to uint64, "
                                "float16, float32, float64; either byte order)", source, shown(h.dtype)));
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
  const std::vector<std::size_t> example = h.shape.size() > 1 ? std::vector<std::size_t>(h.shape.begin() + 1, h.shape.end())
                                                               : std::vector<std::size_t>(1, 1);
  std::size_t features = 1;
  for (std::size_t d : example) features *= d;
  if (features == 0) throw DataError(fmt::format("{}: examples of shape ({}) hold no values", source, fmt::join(example, ", ")));
  Dataset d;
  if (h.dtype == "|u1") {  // pixels: kept as bytes, scaled to [0, 1] a batch at a time
    std::vector<std::uint8_t> pixels = values_as<std::uint8_t>(bytes, h);
    d = Dataset(h.fortran_order ? c_order(std::move(pixels), h.shape) : std::move(pixels), features);
  } else {
    std::vector<float> values = values_as<float>(bytes, h);
    for (float v : values)
      if (!std::isfinite(v)) throw DataError(fmt::format("{}: holds a non-finite value ({})", source, v));
    d = Dataset(h.fortran_order ? c_order(std::move(values), h.shape) : std::move(values), features);
  }
  d.set_example_shape(example);
  return d;
}

std::vector<std::int32_t> parse_npy_labels(std::string_view bytes, const std::string& source) {
  const NpyHeader h = parse_npy_header(bytes, source);
  if (h.shape.size() != 1) throw DataError(fmt::format("{}: labels must have rank 1, found ({})", source, fmt::join(h.shape, ", ")));
  const char kind = element_type(h.dtype).kind;
  if (kind != 'i' && kind != 'u' && kind != 'f')
    throw DataError(fmt::format("{}: labels of dtype '{}' are not supported (integers, or floats holding whole numbers)",
                                source, shown(h.dtype)));
  std::vector<std::int32_t> labels;
  const std::vector<double> values = values_as<double>(bytes, h);  // exact for every label that fits an int32
  for (std::size_t i = 0; i < values.size(); ++i) {
    const double v = values[i];
    if (!(v >= 0 && v <= std::numeric_limits<std::int32_t>::max()))
      throw DataError(fmt::format("{}: label {} (entry {}) is out of range (0 to 2^31-1)", source, v, i));
    if (v != std::floor(v)) throw DataError(fmt::format("{}: label {} (entry {}) is not a whole number", source, v, i));
    labels.push_back(static_cast<std::int32_t>(v));
  }
  return labels;
}

std::string read_file_bytes(const std::filesystem::path& path) {
  // A device never ends (/dev/zero, /dev/urandom): read to its end, it would fill the memory.
  std::error_code ec;
  const std::filesystem::file_status status = std::filesystem::status(path, ec);
  if (!ec && !std::filesystem::is_regular_file(status) && !std::filesystem::is_fifo(status))
    throw DataError(fmt::format("{}: not a file (a device or a folder)", path.string()));
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
  return with_labels(std::move(d), parse_npy_labels(read_file_bytes(labels_path), labels_path.string()),
                     labels_path.string());
}

Dataset with_labels(Dataset d, std::vector<std::int32_t> labels, const std::string& labels_source) {
  if (labels.size() != d.size())
    throw DataError(fmt::format("{}: {} labels for {} examples", labels_source, labels.size(), d.size()));
  const std::vector<std::size_t> shape = d.example_shape();
  if (d.holds_bytes())
    d = Dataset(std::vector<std::uint8_t>(d.bytes().begin(), d.bytes().end()), d.features(), std::move(labels));
  else
    d = Dataset(std::vector<float>(d.floats().begin(), d.floats().end()), d.features(), std::move(labels));
  d.set_example_shape(shape);
  return d;
}

}  // namespace datasets
