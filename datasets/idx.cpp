#include "datasets/idx.hpp"

#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <system_error>

#include <fmt/format.h>

#include "datasets/error.hpp"

namespace fs = std::filesystem;

namespace datasets {

std::size_t element_size(IdxType type) {
  switch (type) {
    case IdxType::U8: case IdxType::I8: return 1;
    case IdxType::I16: return 2;
    case IdxType::I32: case IdxType::F32: return 4;
    case IdxType::F64: return 8;
  }
  throw std::invalid_argument("element_size: not an IDX type");
}

const char* type_name(IdxType type) {
  switch (type) {
    case IdxType::U8: return "u8";
    case IdxType::I8: return "i8";
    case IdxType::I16: return "i16";
    case IdxType::I32: return "i32";
    case IdxType::F32: return "f32";
    case IdxType::F64: return "f64";
  }
  return "?";
}

// Joined by hand: fmt::join on integers trips a false -Wstringop-overflow in g++ 12 at -O3.
std::string dims_text(const std::vector<std::size_t>& dims) {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

namespace {

constexpr IdxType kTypes[] = {IdxType::U8, IdxType::I8, IdxType::I16,
                              IdxType::I32, IdxType::F32, IdxType::F64};

std::optional<IdxType> type_from_code(unsigned code) {
  for (IdxType t : kTypes)
    if (static_cast<unsigned>(t) == code) return t;
  return std::nullopt;
}

// IDX is big-endian; swap each element in place on little-endian hosts.
template <class T>
void big_endian_to_native(std::vector<T>& v) {
  if constexpr (sizeof(T) > 1 && std::endian::native == std::endian::little) {
    using U = std::conditional_t<sizeof(T) == 2, std::uint16_t,
                                 std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>>;
    for (T& x : v) {
      U u = std::bit_cast<U>(x);
      if constexpr (sizeof(T) == 2) u = __builtin_bswap16(u);
      if constexpr (sizeof(T) == 4) u = __builtin_bswap32(u);
      if constexpr (sizeof(T) == 8) u = __builtin_bswap64(u);
      x = std::bit_cast<T>(u);
    }
  }
}

// ----- reading ------------------------------------------------------------------------

// A byte stream over a plain or gzip file. read() returns fewer bytes than asked only at
// the end of the input; I/O and gzip errors throw DataError.
class Source {
 public:
  explicit Source(const fs::path& path) : name_(path.string()) {
    std::error_code ec;
    if (!fs::exists(path, ec)) throw DataError(name_ + ": file not found");
    if (fs::is_directory(path, ec)) throw DataError(name_ + ": is a directory, expected an IDX file");
    plain_ = std::fopen(name_.c_str(), "rb");
    if (plain_ == nullptr) throw DataError(name_ + ": cannot open: " + std::strerror(errno));
    unsigned char magic[2] = {0, 0};
    std::size_t n = std::fread(magic, 1, 2, plain_);
    file_size_ = fs::file_size(path, ec);
    if (n == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
      std::fclose(plain_);
      plain_ = nullptr;
      gz_ = gzopen(name_.c_str(), "rb");
      if (gz_ == nullptr) throw DataError(name_ + ": cannot open gzip stream: " + std::strerror(errno));
      gzbuffer(gz_, 1U << 18);  // larger than the 8 KB default: fewer, bigger inflate calls
    } else {
      std::rewind(plain_);
    }
  }
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;
  ~Source() {
    if (plain_ != nullptr) std::fclose(plain_);
    if (gz_ != nullptr) gzclose(gz_);
  }

  bool compressed() const { return gz_ != nullptr; }
  const std::string& name() const { return name_; }
  /// "byte offset 16" or, for gzip, "byte offset 16 of the decompressed stream".
  std::string where(std::uint64_t offset) const {
    return fmt::format("byte offset {}{}", offset, compressed() ? " of the decompressed stream" : "");
  }
  /// Bytes after the current position, known up front only for plain files.
  std::optional<std::uint64_t> remaining() const {
    if (compressed()) return std::nullopt;
    return file_size_ - std::min(file_size_, position_);
  }
  std::uint64_t file_size() const { return file_size_; }
  /// The most bytes the whole stream can hold: the file size, or for gzip what deflate's
  /// best ratio (1032:1, one 258-byte match per 2 bits) could inflate it to.
  std::uint64_t most_bytes() const {
    constexpr std::uint64_t kDeflateMaxRatio = 1032;
    return compressed() ? file_size_ * kDeflateMaxRatio : file_size_;
  }

  std::size_t read(void* dst, std::size_t n) {
    auto* out = static_cast<char*>(dst);
    std::size_t total = 0;
    while (total < n) {
      std::size_t got = 0;
      if (gz_ != nullptr) {
        unsigned ask = static_cast<unsigned>(std::min<std::size_t>(n - total, INT_MAX / 2));
        int r = gzread(gz_, out + total, ask);
        if (r < 0) gzip_error();
        got = static_cast<std::size_t>(r);
        if (got < ask) {
          // A short read is the end of the stream, or a stream cut off mid-way.
          int err = Z_OK;
          gzerror(gz_, &err);
          if (err != Z_OK) gzip_error(got);
        }
      } else {
        got = std::fread(out + total, 1, n - total, plain_);
        if (got < n - total && std::ferror(plain_))
          throw DataError(fmt::format("{}: read error at {}: {}", name_, where(position_ + got),
                                      std::strerror(errno)));
      }
      total += got;
      position_ += got;
      if (got == 0) break;
    }
    return total;
  }

 private:
  [[noreturn]] void gzip_error(std::size_t extra = 0) {
    int err = Z_OK;
    const char* msg = gzerror(gz_, &err);
    throw DataError(fmt::format("{}: corrupt gzip stream near {}: {} (zlib error {})", name_,
                                where(position_ + extra),
                                err == Z_BUF_ERROR ? "the compressed file ends early" : msg, err));
  }

  std::string name_;
  std::FILE* plain_ = nullptr;
  gzFile gz_ = nullptr;
  std::uint64_t file_size_ = 0;  // on disk (compressed, for gzip)
  std::uint64_t position_ = 0;
};

struct Header {
  IdxType type;
  std::vector<std::size_t> dims;
  std::size_t count;  // elements
  std::size_t size;   // bytes of the header
};

Header read_header(Source& src) {
  const std::string& name = src.name();
  unsigned char m[4] = {0, 0, 0, 0};
  std::size_t n = src.read(m, 4);
  if (n < 4)
    throw DataError(fmt::format("{}: truncated header: expected at least 4 bytes (the magic number), "
                                "the file has {}", name, n));
  if (m[0] != 0 || m[1] != 0)
    throw DataError(fmt::format("{}: bad magic number at {}: expected 00 00 <type> <rank>, found "
                                "{:02x} {:02x} {:02x} {:02x} (not an IDX file)",
                                name, src.where(0), m[0], m[1], m[2], m[3]));
  std::optional<IdxType> type = type_from_code(m[2]);
  if (!type)
    throw DataError(fmt::format("{}: unknown IDX type code 0x{:02x} at {}: expected 0x08 (u8), "
                                "0x09 (i8), 0x0b (i16), 0x0c (i32), 0x0d (f32) or 0x0e (f64)",
                                name, m[2], src.where(2)));
  const unsigned rank = m[3];
  if (rank == 0)
    throw DataError(fmt::format("{}: rank 0 at {}: expected at least one dimension", name,
                                src.where(3)));
  Header h{*type, std::vector<std::size_t>(rank), 1, 4 + 4 * std::size_t{rank}};
  for (unsigned i = 0; i < rank; ++i) {
    unsigned char b[4];
    std::size_t got = src.read(b, 4);
    if (got < 4)
      throw DataError(fmt::format("{}: truncated header: rank {} needs {} header bytes, the file "
                                  "ends after {}", name, rank, h.size, 4 + 4 * i + got));
    h.dims[i] = (std::size_t{b[0]} << 24) | (std::size_t{b[1]} << 16) | (std::size_t{b[2]} << 8) | b[3];
    if (h.dims[i] != 0 && h.count > SIZE_MAX / element_size(h.type) / h.dims[i])
      throw DataError(fmt::format("{}: dimensions at {} are too large to hold", name, src.where(4)));
    h.count *= h.dims[i];
  }
  return h;
}

[[noreturn]] void throw_length_mismatch(const Source& src, const Header& h, std::uint64_t found,
                                        bool more) {
  std::uint64_t need = std::uint64_t{h.count} * element_size(h.type);
  std::string dims = dims_text(h.dims);
  if (found < need)
    throw DataError(fmt::format("{}: truncated data: dims {} of {} need {} bytes after the {}-byte "
                                "header, {} {}", src.name(), dims, type_name(h.type), need, h.size,
                                src.compressed() ? "the decompressed stream has" : "the file has",
                                found));
  throw DataError(fmt::format("{}: trailing garbage: dims {} of {} need {} bytes after the {}-byte "
                              "header, found {}{} ({}{} extra bytes from {})", src.name(), dims,
                              type_name(h.type), need, h.size, found, more ? "+" : "",
                              more ? "at least " : "", found - need, src.where(h.size + need)));
}

template <class T>
IdxArray::Storage read_data(Source& src, const Header& h) {
  const std::uint64_t need = std::uint64_t{h.count} * sizeof(T);
  if (auto left = src.remaining(); left && *left != need)
    throw_length_mismatch(src, h, *left, false);
  if (src.compressed() && h.size + need > src.most_bytes())
    throw DataError(fmt::format("{}: dims {} of {} need {} bytes after the {}-byte header, but a "
                                "gzip file of {} bytes inflates to at most {}: the header is wrong "
                                "or the file is cut short", src.name(), dims_text(h.dims),
                                type_name(h.type), need, h.size, src.file_size(), src.most_bytes()));

  // A gzip stream's length is unknown until it is inflated, so a lying header must not make
  // us allocate (and zero) what it claims before the bytes arrive: start small and double,
  // so the buffer is never more than twice what was read.
  constexpr std::size_t kFirstStep = std::size_t{1} << 20;
  std::vector<T> v(src.compressed() ? std::min(h.count, kFirstStep / sizeof(T)) : h.count);
  std::size_t got = 0;
  for (;;) {
    std::size_t want = v.size() * sizeof(T) - got;
    std::size_t n = src.read(reinterpret_cast<char*>(v.data()) + got, want);
    got += n;
    if (n < want || v.size() == h.count) break;
    v.resize(std::min(h.count, v.size() * 2));
  }
  if (got < need) throw_length_mismatch(src, h, got, false);
  char extra[4096];
  if (std::size_t n = src.read(extra, sizeof extra); n > 0)
    throw_length_mismatch(src, h, need + n, n == sizeof extra);
  big_endian_to_native(v);
  return v;
}

// ----- writing ------------------------------------------------------------------------

class Sink {
 public:
  Sink(const fs::path& path, Compression c) : name_(path.string()) {
    if (c == Compression::gzip) {
      gz_ = gzopen(name_.c_str(), "wb6");
      if (gz_ == nullptr) fail("cannot create");
    } else {
      plain_ = std::fopen(name_.c_str(), "wb");
      if (plain_ == nullptr) fail("cannot create");
    }
  }
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;
  ~Sink() {
    if (plain_ != nullptr) std::fclose(plain_);
    if (gz_ != nullptr) gzclose(gz_);
  }

  void write(const void* data, std::size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      std::size_t step = std::min<std::size_t>(n, 1U << 30);
      bool ok = gz_ != nullptr ? gzwrite(gz_, p, static_cast<unsigned>(step)) == static_cast<int>(step)
                               : std::fwrite(p, 1, step, plain_) == step;
      if (!ok) fail("write failed");
      p += step;
      n -= step;
    }
  }

  void close() {
    bool ok = true;
    if (gz_ != nullptr) ok = gzclose(gz_) == Z_OK;
    if (plain_ != nullptr) ok = std::fclose(plain_) == 0;
    gz_ = nullptr;
    plain_ = nullptr;
    if (!ok) fail("close failed");
  }

 private:
  [[noreturn]] void fail(const char* what) {
    throw DataError(fmt::format("{}: {}: {}", name_, what, std::strerror(errno)));
  }
  std::string name_;
  std::FILE* plain_ = nullptr;
  gzFile gz_ = nullptr;
};

template <class T>
void write_elements(Sink& sink, const std::vector<T>& values) {
  // Convert to big-endian a block at a time: no second copy of a large array.
  constexpr std::size_t kBlock = 8192;
  std::vector<T> block;
  block.reserve(std::min(kBlock, values.size()));
  for (std::size_t i = 0; i < values.size(); i += kBlock) {
    std::size_t n = std::min(kBlock, values.size() - i);
    block.assign(values.begin() + static_cast<std::ptrdiff_t>(i),
                 values.begin() + static_cast<std::ptrdiff_t>(i + n));
    big_endian_to_native(block);  // a byte swap is its own inverse
    sink.write(block.data(), n * sizeof(T));
  }
}

}  // namespace

// ----- IdxArray -------------------------------------------------------------------------

IdxType IdxArray::type() const { return kTypes[data_.index()]; }

std::size_t IdxArray::count() const {
  return std::visit([](const auto& v) { return v.size(); }, data_);
}

void IdxArray::check_count() const {
  std::size_t product = 1;
  for (std::size_t d : dims_) product *= d;
  if (dims_.empty() || product != count())
    throw std::invalid_argument(fmt::format("IdxArray: dims {} hold {} elements, given {}",
                                            dims_text(dims_), dims_.empty() ? 0 : product, count()));
}

void IdxArray::throw_wrong_type() const {
  throw std::logic_error(fmt::format("IdxArray holds {} elements, asked for another type",
                                     type_name(type())));
}

std::vector<float> IdxArray::to_floats() const {
  return std::visit([](const auto& v) { return std::vector<float>(v.begin(), v.end()); }, data_);
}

std::vector<std::int64_t> IdxArray::to_integers() const {
  return std::visit(
      [this](const auto& v) {
        using T = typename std::decay_t<decltype(v)>::value_type;
        if constexpr (std::is_floating_point_v<T>) {
          throw_wrong_type();
          return std::vector<std::int64_t>{};
        } else {
          return std::vector<std::int64_t>(v.begin(), v.end());
        }
      },
      data_);
}

// ----- read_idx / write_idx -------------------------------------------------------------

IdxArray read_idx(const fs::path& path) {
  Source src(path);
  Header h = read_header(src);
  IdxArray::Storage data;
  switch (h.type) {
    case IdxType::U8: data = read_data<std::uint8_t>(src, h); break;
    case IdxType::I8: data = read_data<std::int8_t>(src, h); break;
    case IdxType::I16: data = read_data<std::int16_t>(src, h); break;
    case IdxType::I32: data = read_data<std::int32_t>(src, h); break;
    case IdxType::F32: data = read_data<float>(src, h); break;
    case IdxType::F64: data = read_data<double>(src, h); break;
  }
  return std::visit([&](auto&& v) { return IdxArray(std::move(h.dims), std::move(v)); },
                    std::move(data));
}

void write_idx(const fs::path& path, const IdxArray& array, Compression compression) {
  const auto& dims = array.dims();
  if (dims.empty() || dims.size() > 255)
    throw DataError(fmt::format("{}: cannot write rank {}: IDX holds ranks 1 to 255",
                                path.string(), dims.size()));
  for (std::size_t d : dims)
    if (d > UINT32_MAX)
      throw DataError(fmt::format("{}: cannot write dims {}: each must fit in 32 bits",
                                  path.string(), dims_text(dims)));
  Sink sink(path, compression);
  std::vector<unsigned char> header{0, 0, static_cast<unsigned char>(array.type()),
                                    static_cast<unsigned char>(dims.size())};
  for (std::size_t d : dims)
    for (int shift = 24; shift >= 0; shift -= 8) header.push_back(static_cast<unsigned char>(d >> shift));
  sink.write(header.data(), header.size());
  std::visit([&](const auto& v) { write_elements(sink, v); }, array.storage());
  sink.close();
}

}  // namespace datasets
