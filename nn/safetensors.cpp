#include "nn/safetensors.hpp"

#include "nn/atomic_file.hpp"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace fs = std::filesystem;

// The data section is little-endian; on such a host tensors are copied as they are.
static_assert(std::endian::native == std::endian::little,
              "safetensors.cpp assumes a little-endian host");

namespace nn {

namespace {

struct DTypeInfo {
  DType dtype;
  const char* name;
  std::size_t size;
};

constexpr DTypeInfo kDTypes[] = {
    {DType::BOOL, "BOOL", 1}, {DType::U8, "U8", 1},   {DType::I8, "I8", 1},
    {DType::F8_E5M2, "F8_E5M2", 1}, {DType::F8_E4M3, "F8_E4M3", 1},
    {DType::I16, "I16", 2},   {DType::U16, "U16", 2}, {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2}, {DType::I32, "I32", 4}, {DType::U32, "U32", 4},
    {DType::F32, "F32", 4},   {DType::I64, "I64", 8}, {DType::U64, "U64", 8},
    {DType::F64, "F64", 8},
};

const DTypeInfo& info(DType d) {
  for (const auto& i : kDTypes)
    if (i.dtype == d) return i;
  throw std::invalid_argument("nn::DType: unknown value");
}

// Joined by hand: fmt::join on integers trips a false -Wstringop-overflow in g++ 12 at -O3.
std::string shape_text(const std::vector<std::size_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Product of the shape, or nullopt on overflow.
std::optional<std::size_t> checked_count(const std::vector<std::size_t>& shape, std::size_t elem) {
  std::size_t n = elem;
  for (std::size_t d : shape) {
    if (d != 0 && n > SIZE_MAX / d) return std::nullopt;
    n *= d;
  }
  return n;
}

// The header (length prefix included) for these entries, checked.
std::string build_header(std::span<const TensorEntry> entries, const Metadata& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::set<std::string_view> names;
  std::size_t offset = 0;
  for (const TensorEntry& e : entries) {
    if (e.name.empty() || e.name == "__metadata__")
      throw SafetensorsError(fmt::format("safetensors: invalid tensor name \"{}\"", e.name));
    if (!names.insert(e.name).second)
      throw SafetensorsError(fmt::format("safetensors: tensor \"{}\" given twice", e.name));
    std::optional<std::size_t> count = checked_count(e.shape, 1);
    if (!count || *count != e.count)
      throw SafetensorsError(fmt::format("safetensors: tensor \"{}\" has shape {} but {} elements",
                                         e.name, shape_text(e.shape), e.count));
    if (e.data == nullptr && e.count > 0)
      throw SafetensorsError(fmt::format("safetensors: tensor \"{}\" has no data", e.name));
    std::size_t bytes = e.count * dtype_size(e.dtype);
    header[e.name] = {{"dtype", dtype_name(e.dtype)},
                      {"shape", e.shape},
                      {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string json = header.dump();
  // Pad so the data section starts 8-byte aligned (8 + json length is a multiple of 8).
  json.append((8 - json.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  std::uint64_t n = json.size();
  std::memcpy(out.data(), &n, 8);
  return out + json;
}

// Emits the file as a sequence of byte ranges: the header, then each tensor's data.
void emit(std::span<const TensorEntry> entries, const Metadata& metadata,
          const std::function<void(const void*, std::size_t)>& write) {
  std::string header = build_header(entries, metadata);
  write(header.data(), header.size());
  for (const TensorEntry& e : entries) write(e.data, e.count * dtype_size(e.dtype));
}

std::string errno_text() { return std::strerror(errno); }

// ----- the JSON header ----------------------------------------------------------------------

// A valid header nests three deep (the header object, a tensor entry, its shape). Anything
// much deeper is hostile: bounding it keeps every later walk over the value (messages,
// destruction) shallow, whatever a file holds.
constexpr int kMaxJsonDepth = 32;

// A name or string from the file as it appears in a message: quoted, and cut short.
std::string quoted(const std::string& s) {
  constexpr std::size_t kMax = 80;
  return s.size() <= kMax ? fmt::format("\"{}\"", s)
                          : fmt::format("\"{}...\" ({} bytes)", s.substr(0, kMax), s.size());
}

// One level of a JSON value for a message, never a recursive dump: scalars as written,
// arrays by their first few items, with nested containers named by their type only.
std::string brief(const nlohmann::json& v) {
  constexpr std::size_t kItems = 8;
  if (v.is_string()) return quoted(v.get<std::string>());
  if (v.is_object()) return fmt::format("a JSON object of {} keys", v.size());
  if (!v.is_array()) return v.dump();
  std::string s = "[";
  std::size_t i = 0;
  for (const auto& item : v) {
    if (i == kItems) {
      s += fmt::format(", ... ({} items)", v.size());
      break;
    }
    s += i++ ? ", " : "";
    s += item.is_array() || item.is_object() ? std::string("<") + item.type_name() + ">" : brief(item);
  }
  return s + "]";
}

// Parses the header text, refusing nesting deeper than kMaxJsonDepth. The parser callback
// drops any value that deep, so the refused value is never built.
template <class Fail>
nlohmann::json parse_header_json(const char* text, std::size_t n, const Fail& fail) {
  int deepest = 0;
  auto limit_depth = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json&) {
    const bool opens = event == nlohmann::json::parse_event_t::object_start ||
                       event == nlohmann::json::parse_event_t::array_start;
    if (opens) deepest = std::max(deepest, depth + 1);
    return depth < kMaxJsonDepth;
  };
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text, text + n, limit_depth);
  } catch (const nlohmann::json::exception& e) {  // parse errors, and numbers out of range
    fail(fmt::format("header (bytes 8 to {}) is not valid JSON: {}", 8 + n, e.what()));
  }
  if (deepest > kMaxJsonDepth)
    fail(fmt::format("header (bytes 8 to {}) nests JSON {} levels deep; a safetensors header needs "
                     "3 and at most {} are accepted", 8 + n, deepest, kMaxJsonDepth));
  return header;
}

// ----- reading ----------------------------------------------------------------------------

float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = std::uint32_t{h & 0x8000U} << 16;
  std::uint32_t exp = (h >> 10) & 0x1FU;
  std::uint32_t mant = h & 0x3FFU;
  std::uint32_t bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000U | (mant << 13);  // inf or NaN
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);  // rebias 15 -> 127
  } else if (mant == 0) {
    bits = sign;  // zero
  } else {
    // Subnormal half: normalize it into a float.
    int e = -1;
    do {
      ++e;
      mant <<= 1;
    } while ((mant & 0x400U) == 0);
    bits = sign | (static_cast<std::uint32_t>(112 - e) << 23) | ((mant & 0x3FFU) << 13);
  }
  return std::bit_cast<float>(bits);
}

template <class T>
T load_le(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));  // tensors need not be aligned within the file
  return v;
}

}  // namespace

std::size_t dtype_size(DType dtype) { return info(dtype).size; }
std::string_view dtype_name(DType dtype) { return info(dtype).name; }

std::optional<DType> parse_dtype(std::string_view name) {
  for (const auto& i : kDTypes)
    if (name == i.name) return i.dtype;
  return std::nullopt;
}

// ----- writing ----------------------------------------------------------------------------

std::vector<std::byte> serialize_safetensors(std::span<const TensorEntry> entries, const Metadata& metadata) {
  std::vector<std::byte> out;
  emit(entries, metadata, [&](const void* p, std::size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    out.insert(out.end(), b, b + n);
  });
  return out;
}

void save_safetensors(const fs::path& path, std::span<const TensorEntry> entries, const Metadata& metadata) {
  build_header(entries, metadata);  // reject bad entries before touching the disk
  try {
    write_file_atomically(path, [&](const ByteSink& write) { emit(entries, metadata, write); });
  } catch (const FileWriteError& e) {
    throw SafetensorsError(e.what());
  }
}

// ----- TensorView -------------------------------------------------------------------------

std::size_t TensorView::count() const { return bytes.size() / dtype_size(dtype); }

void TensorView::copy_to(std::span<float> out) const {
  const std::size_t n = count();
  if (out.size() != n)
    throw SafetensorsError(fmt::format("tensor {}: {} values, destination holds {}", name, n, out.size()));
  const std::byte* p = bytes.data();
  const std::size_t s = dtype_size(dtype);
  auto each = [&](auto load) {
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(load(p + i * s));
  };
  switch (dtype) {
    case DType::F32: if (n > 0) std::memcpy(out.data(), p, n * 4); break;
    case DType::F64: each(load_le<double>); break;
    case DType::F16: each([](const std::byte* q) { return half_to_float(load_le<std::uint16_t>(q)); }); break;
    case DType::BF16:
      each([](const std::byte* q) { return std::bit_cast<float>(std::uint32_t{load_le<std::uint16_t>(q)} << 16); });
      break;
    case DType::BOOL: case DType::U8: each(load_le<std::uint8_t>); break;
    case DType::I8: each(load_le<std::int8_t>); break;
    case DType::I16: each(load_le<std::int16_t>); break;
    case DType::U16: each(load_le<std::uint16_t>); break;
    case DType::I32: each(load_le<std::int32_t>); break;
    case DType::U32: each(load_le<std::uint32_t>); break;
    case DType::I64: each(load_le<std::int64_t>); break;
    case DType::U64: each(load_le<std::uint64_t>); break;
    case DType::F8_E5M2: case DType::F8_E4M3:
      throw SafetensorsError(fmt::format("tensor {}: cannot convert dtype {} to float", name, dtype_name(dtype)));
  }
}

std::vector<float> TensorView::to_floats() const {
  std::vector<float> out(count());
  copy_to(out);
  return out;
}

ag::Array TensorView::to_array() const {
  ag::Shape dims(shape.begin(), shape.end());
  if (shape.empty()) dims = {1, 1};
  else if (shape.size() == 1) dims = {1, shape[0]};
  else if (shape.size() > ag::kMaxRank)
    throw SafetensorsError(fmt::format("tensor {}: shape {} has rank {}; the ops take rank {} at most", name,
                                       shape_text(shape), shape.size(), ag::kMaxRank));
  ag::Array a = ag::Array::from_shape(dims);
  copy_to(std::span<float>(a.data(), a.size()));
  return a;
}

// ----- SafetensorsFile --------------------------------------------------------------------

SafetensorsFile SafetensorsFile::load(const fs::path& path) {
  const std::string name = path.string();
  std::error_code ec;
  if (!fs::exists(path, ec)) throw SafetensorsError(name + ": file not found");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw SafetensorsError(fmt::format("{}: cannot open: {}", name, errno_text()));
  std::uintmax_t size = fs::file_size(path, ec);
  if (ec) throw SafetensorsError(fmt::format("{}: cannot read its size: {}", name, ec.message()));
  std::vector<std::byte> bytes(size);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
  if (static_cast<std::uintmax_t>(in.gcount()) != size)
    throw SafetensorsError(fmt::format("{}: read {} of {} bytes", name, in.gcount(), size));
  return parse(std::move(bytes), name);
}

SafetensorsFile SafetensorsFile::parse(std::vector<std::byte> bytes, std::string source) {
  const std::string& src = source;
  auto fail = [&](const std::string& what) { throw SafetensorsError(src + ": " + what); };
  if (bytes.size() < 8)
    fail(fmt::format("too short for a safetensors file: expected at least 8 bytes (the header "
                     "length), found {}", bytes.size()));
  const std::uint64_t n = load_le<std::uint64_t>(bytes.data());
  if (n > bytes.size() - 8)
    fail(fmt::format("header length {} (at byte offset 0) runs past the end of the file: only {} "
                     "bytes follow it", n, bytes.size() - 8));
  const std::size_t data_start = 8 + static_cast<std::size_t>(n);
  const std::size_t data_size = bytes.size() - data_start;

  const char* text = reinterpret_cast<const char*>(bytes.data()) + 8;
  nlohmann::json header = parse_header_json(text, static_cast<std::size_t>(n), fail);
  if (!header.is_object()) fail(fmt::format("header is a JSON {}, expected an object", header.type_name()));

  SafetensorsFile file;
  // Plain loops, not structured bindings: clang 14 cannot capture those in the lambdas below.
  for (const auto& item : header.items()) {
    const std::string& key = item.key();
    const nlohmann::json& value = item.value();
    if (key == "__metadata__") {
      if (!value.is_object()) fail(fmt::format("__metadata__ is a JSON {}, expected an object", value.type_name()));
      for (const auto& entry : value.items()) {
        if (!entry.value().is_string())
          fail(fmt::format("__metadata__ value of {} is a JSON {}, expected a string", quoted(entry.key()),
                           entry.value().type_name()));
        file.metadata_[entry.key()] = entry.value().get<std::string>();
      }
      continue;
    }
    auto bad = [&](const std::string& what) { fail(fmt::format("tensor {}: {}", quoted(key), what)); };
    if (!value.is_object()) bad(fmt::format("entry is a JSON {}, expected an object", value.type_name()));
    if (!value.contains("dtype") || !value["dtype"].is_string()) bad("expected \"dtype\": a string");
    if (!value.contains("shape") || !value["shape"].is_array()) bad("expected \"shape\": an array");
    if (!value.contains("data_offsets") || !value["data_offsets"].is_array() ||
        value["data_offsets"].size() != 2)
      bad("expected \"data_offsets\": an array of two integers");
    const std::string dtype_text = value["dtype"].get<std::string>();
    std::optional<DType> dtype = parse_dtype(dtype_text);
    if (!dtype) bad(fmt::format("unknown dtype {}", quoted(dtype_text)));
    Info t{*dtype, {}, 0, 0};
    for (const auto& d : value["shape"]) {
      if (!d.is_number_unsigned())
        bad(fmt::format("shape {} has an entry that is not a non-negative integer", brief(value["shape"])));
      t.shape.push_back(d.get<std::size_t>());
    }
    const auto& offs = value["data_offsets"];
    if (!offs[0].is_number_unsigned() || !offs[1].is_number_unsigned())
      bad(fmt::format("data_offsets {} are not non-negative integers", brief(offs)));
    const std::uint64_t begin = offs[0].get<std::uint64_t>();
    const std::uint64_t end = offs[1].get<std::uint64_t>();
    if (begin > end) bad(fmt::format("data_offsets [{}, {}] end before they begin", begin, end));
    if (end > data_size)
      bad(fmt::format("data_offsets [{}, {}] go past the end of the data section ({} bytes, from "
                      "byte offset {})", begin, end, data_size, data_start));
    std::optional<std::size_t> need = checked_count(t.shape, dtype_size(t.dtype));
    if (!need || *need != end - begin)
      bad(fmt::format("shape {} of {} needs {} bytes, data_offsets [{}, {}] hold {}", shape_text(t.shape),
                      dtype_text, need ? fmt::to_string(*need) : std::string("too many"), begin, end, end - begin));
    t.begin = data_start + begin;
    t.end = data_start + end;
    file.tensors_.emplace(key, std::move(t));
  }

  // The tensors must tile the data section: sorted by offset, each starts where the last ended.
  std::vector<std::pair<std::string, const Info*>> order;
  for (const auto& [name, t] : file.tensors_) order.emplace_back(name, &t);
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return std::pair(a.second->begin, a.second->end) < std::pair(b.second->begin, b.second->end);
  });
  std::size_t at = data_start;
  std::string previous;
  for (const auto& [name, t] : order) {
    if (t->begin < at)
      fail(fmt::format("tensor \"{}\" (data_offsets [{}, {}]) overlaps tensor \"{}\"", name,
                       t->begin - data_start, t->end - data_start, previous));
    if (t->begin > at)
      fail(fmt::format("gap in the data section: bytes [{}, {}) before tensor \"{}\" belong to no tensor",
                       at - data_start, t->begin - data_start, name));
    at = t->end;
    previous = name;
  }
  if (at != bytes.size())
    fail(fmt::format("the data section has {} bytes but its tensors cover {} (trailing bytes from "
                     "byte offset {})", data_size, at - data_start, at));

  file.source_ = std::move(source);
  file.bytes_ = std::move(bytes);
  return file;
}

const std::string& SafetensorsFile::metadata_value(const std::string& key) const {
  auto it = metadata_.find(key);
  if (it == metadata_.end())
    throw SafetensorsError(fmt::format("missing metadata key \"{}\" in {}", key, source_));
  return it->second;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::pair<std::size_t, std::string>> by_offset;
  for (const auto& [name, t] : tensors_) by_offset.emplace_back(t.begin, name);
  std::sort(by_offset.begin(), by_offset.end());
  std::vector<std::string> out;
  for (auto& [offset, name] : by_offset) out.push_back(std::move(name));
  return out;
}

bool SafetensorsFile::contains(const std::string& name) const { return tensors_.contains(name); }

TensorView SafetensorsFile::get(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) {
    std::vector<std::string> all = names();
    std::string listed;
    for (const auto& n : all) listed += (listed.empty() ? "" : ", ") + n;
    if (all.size() > 12) listed = fmt::format("{} tensors", all.size());
    throw SafetensorsError(fmt::format("missing tensor \"{}\" in {} (it holds: {})", name, source_,
                                       all.empty() ? "none" : listed));
  }
  const Info& t = it->second;
  return TensorView{name, t.dtype, t.shape, std::span<const std::byte>(bytes_.data() + t.begin, t.end - t.begin)};
}

TensorView SafetensorsFile::get(const std::string& name, const std::vector<std::size_t>& expected_shape) const {
  TensorView v = get(name);
  if (v.shape != expected_shape)
    throw SafetensorsError(fmt::format("tensor \"{}\" in {} has shape {}, expected {}", name, source_,
                                       shape_text(v.shape), shape_text(expected_shape)));
  return v;
}

}  // namespace nn
