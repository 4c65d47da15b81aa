#include "datasets/npz.hpp"

#include <array>
#include <filesystem>
#include <memory>
#include <optional>
#include <vector>

#include <fmt/format.h>
#include <zip.h>

#include "datasets/error.hpp"
#include "datasets/npy.hpp"

namespace datasets {
namespace {

// What a deflated member may inflate to per compressed byte, and a little slack for tiny ones.
constexpr zip_uint64_t kMaxInflation = 1032;
constexpr zip_uint64_t kSlackBytes = 1 << 12;

// An open archive, read-only, closed (without writing) when it goes.
class ZipArchive {
 public:
  ZipArchive(const std::filesystem::path& path, const std::string& source) : source_(source) {
    std::error_code ec;
    archive_bytes_ = std::filesystem::file_size(path, ec);
    if (ec) throw DataError(fmt::format("{}: cannot be read ({})", source_, ec.message()));
    int code = 0;
    archive_ = zip_open(path.c_str(), ZIP_RDONLY, &code);
    if (archive_ == nullptr) {
      zip_error_t error;
      zip_error_init_with_code(&error, code);
      const std::string reason = zip_error_strerror(&error);
      zip_error_fini(&error);
      throw DataError(fmt::format("{}: not a readable .npz archive ({})", source_, reason));
    }
  }
  ZipArchive(std::string_view bytes, const std::string& source) : source_(source), archive_bytes_(bytes.size()) {
    zip_error_t error;
    zip_error_init(&error);
    zip_source_t* from = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &error);
    if (from != nullptr) archive_ = zip_open_from_source(from, ZIP_RDONLY, &error);
    const std::string reason = zip_error_strerror(&error);
    zip_error_fini(&error);
    if (archive_ == nullptr) {
      if (from != nullptr) zip_source_free(from);
      throw DataError(fmt::format("{}: not a readable .npz archive ({})", source_, reason));
    }
  }
  ~ZipArchive() { zip_discard(archive_); }
  ZipArchive(const ZipArchive&) = delete;
  ZipArchive& operator=(const ZipArchive&) = delete;

  bool has(const std::string& array) const { return zip_name_locate(archive_, (array + ".npy").c_str(), 0) >= 0; }

  /// The archive's member names, for a message.
  std::string names() const {
    std::string out;
    const zip_int64_t n = zip_get_num_entries(archive_, 0);
    for (zip_int64_t i = 0; i < n && i < 20; ++i) {
      const char* name = zip_get_name(archive_, static_cast<zip_uint64_t>(i), 0);
      out += fmt::format("{}{}", i == 0 ? "" : ", ", name == nullptr ? "?" : name);
    }
    return n == 0 ? "no arrays" : n > 20 ? out + ", ..." : out;
  }

  /// The bytes of member `array`.npy, whole and checked against its CRC.
  std::string read(const std::string& array) const {
    const std::string name = array + ".npy", where = fmt::format("{}: member {}", source_, name);
    const zip_int64_t index = zip_name_locate(archive_, name.c_str(), 0);
    zip_stat_t stat;
    if (index < 0 || zip_stat_index(archive_, static_cast<zip_uint64_t>(index), 0, &stat) != 0 ||
        (stat.valid & ZIP_STAT_SIZE) == 0 || (stat.valid & ZIP_STAT_COMP_SIZE) == 0)
      throw DataError(fmt::format("{}: cannot be read ({})", where, zip_strerror(archive_)));
    if (stat.comp_size > archive_bytes_)
      throw DataError(fmt::format("{} claims {} compressed bytes, more than the archive's {}", where, stat.comp_size,
                                  archive_bytes_));
    if (stat.size > stat.comp_size * kMaxInflation + kSlackBytes)
      throw DataError(fmt::format("{} claims {} bytes, more than its {} compressed bytes can hold", where,
                                  stat.size, stat.comp_size));
    const std::unique_ptr<zip_file_t, decltype(&zip_fclose)> file(
        zip_fopen_index(archive_, static_cast<zip_uint64_t>(index), 0), zip_fclose);
    if (!file) throw DataError(fmt::format("{}: cannot be opened ({})", where, zip_strerror(archive_)));
    std::string bytes(stat.size, '\0');
    zip_uint64_t done = 0;
    while (done < stat.size) {
      const zip_int64_t got = zip_fread(file.get(), bytes.data() + done, stat.size - done);
      if (got < 0)
        throw DataError(fmt::format("{}: cannot be inflated ({})", where, zip_file_strerror(file.get())));
      if (got == 0) break;
      done += static_cast<zip_uint64_t>(got);
    }
    if (done != stat.size)
      throw DataError(fmt::format("{}: {} bytes where its header says {}", where, done, stat.size));
    // libzip compares the CRC as a read reaches the member's end, which the reads of exactly
    // its size never asked for: deflated bytes corrupted in place inflated to wrong values that
    // were read as the data.
    char past_the_end = 0;
    const zip_int64_t more = zip_fread(file.get(), &past_the_end, 1);
    if (more < 0) throw DataError(fmt::format("{}: is corrupt ({})", where, zip_file_strerror(file.get())));
    if (more > 0) throw DataError(fmt::format("{}: more bytes than its header's {}", where, stat.size));
    return bytes;
  }

  const std::string& source() const { return source_; }

 private:
  zip_t* archive_ = nullptr;
  std::string source_;
  zip_uint64_t archive_bytes_ = 0;  // the whole file: no member's compressed bytes can be more
};

struct Members {
  std::string examples, labels;
};

// Which arrays hold `split`, by the names the header describes; nullopt if the archive has
// no such split.
std::optional<Members> members_of(const ZipArchive& zip, const std::string& split) {
  if (zip.has("x_train")) {
    if (split == "train") return Members{"x_train", "y_train"};
    if (split == "test" && zip.has("x_test")) return Members{"x_test", "y_test"};
    return std::nullopt;
  }
  if (split != "train") return std::nullopt;
  const std::array<Members, 4> layouts = {Members{"x", "y"}, Members{"images", "labels"}, Members{"data", "labels"},
                                          Members{"arr_0", "arr_1"}};
  for (const Members& m : layouts)
    if (zip.has(m.examples)) return m;
  throw DataError(fmt::format("{}: holds {}; name the examples x_train (and x_test, y_train, y_test), or x (and y)",
                              zip.source(), zip.names()));
}

Dataset read_split(const ZipArchive& zip, const std::string& split) {
  const std::optional<Members> m = members_of(zip, split);
  if (!m) throw DataError(fmt::format("{}: the archive has no {} split", zip.source(), split));
  Dataset d = parse_npy_dataset(zip.read(m->examples), fmt::format("{}: {}.npy", zip.source(), m->examples));
  if (!zip.has(m->labels)) return d;
  const std::string labels_source = fmt::format("{}: {}.npy", zip.source(), m->labels);
  return with_labels(std::move(d), parse_npy_labels(zip.read(m->labels), labels_source), labels_source);
}

}  // namespace

bool npz_has_split(const std::filesystem::path& path, const std::string& split) {
  const ZipArchive zip(path, path.string());
  return members_of(zip, split).has_value();
}

Dataset read_npz_dataset(const std::filesystem::path& path, const std::string& split) {
  return read_split(ZipArchive(path, path.string()), split);
}

Dataset parse_npz_dataset(std::string_view bytes, const std::string& split, const std::string& source) {
  return read_split(ZipArchive(bytes, source), split);
}

}  // namespace datasets
