// IDX files: the format MNIST and Fashion-MNIST ship in.
//
// Layout: two zero bytes, a type code, the rank R; then R big-endian u32 dimensions; then
// the elements, big-endian, row-major. Files may be plain or gzip-compressed; which one is
// decided by the gzip magic bytes (1f 8b), never by the file name.
//
//   datasets::IdxArray images = datasets::read_idx("train-images-idx3-ubyte.gz");
//   images.dims();          // {60000, 28, 28}
//   images.bytes().size();  // 47040000: u8 data stays as bytes
//
//   datasets::IdxArray v({3, 2}, std::vector<float>{1, 2, 3, 4, 5, 6});
//   datasets::write_idx("vectors-idx2-float.gz", v, datasets::Compression::gzip);
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <variant>
#include <vector>

namespace datasets {

/// The IDX element types, by their type code.
enum class IdxType : std::uint8_t {
  U8 = 0x08,
  I8 = 0x09,
  I16 = 0x0B,
  I32 = 0x0C,
  F32 = 0x0D,
  F64 = 0x0E,
};

std::size_t element_size(IdxType type);
/// "u8", "i8", "i16", "i32", "f32", "f64".
const char* type_name(IdxType type);
/// "[60000, 28, 28]"
std::string dims_text(const std::vector<std::size_t>& dims);

/// An n-dimensional IDX array held in native byte order. u8 data stays as raw bytes
/// (a 60000-image set is 47 MB, not 188 MB of floats); other types keep their values.
class IdxArray {
 public:
  // The alternatives are in the order of the type codes above, so type() can read the index.
  using Storage = std::variant<std::vector<std::uint8_t>, std::vector<std::int8_t>,
                               std::vector<std::int16_t>, std::vector<std::int32_t>,
                               std::vector<float>, std::vector<double>>;

  IdxArray() = default;
  /// Throws std::invalid_argument unless the product of dims equals values.size().
  template <class T>
  IdxArray(std::vector<std::size_t> dims, std::vector<T> values)
      : dims_(std::move(dims)), data_(std::move(values)) {
    check_count();
  }

  IdxType type() const;
  const std::vector<std::size_t>& dims() const { return dims_; }
  /// Number of elements: the product of the dims.
  std::size_t count() const;

  /// The u8 data; throws std::logic_error for any other type.
  const std::vector<std::uint8_t>& bytes() const { return values<std::uint8_t>(); }
  /// The values as their own type T; throws std::logic_error if the type differs.
  template <class T>
  const std::vector<T>& values() const {
    if (const auto* v = std::get_if<std::vector<T>>(&data_)) return *v;
    throw_wrong_type();
  }
  /// Moves the storage out (leaves this array empty); lets a dataset take over the data.
  template <class T>
  std::vector<T> take() {
    if (auto* v = std::get_if<std::vector<T>>(&data_)) return std::move(*v);
    throw_wrong_type();
  }
  /// Every element converted to float (u8 as 0..255, not scaled).
  std::vector<float> to_floats() const;
  /// Every element converted to int64; throws std::logic_error for float types.
  std::vector<std::int64_t> to_integers() const;

  const Storage& storage() const { return data_; }

 private:
  void check_count() const;
  [[noreturn]] void throw_wrong_type() const;

  std::vector<std::size_t> dims_;
  Storage data_;
};

/// Reads a plain or gzip IDX file. Validates the magic number, type code, rank,
/// dimensions and that the data is exactly as long as the dims say (no truncation,
/// no trailing bytes); throws DataError naming the file, offset, expected and found.
IdxArray read_idx(const std::filesystem::path& path);

enum class Compression { none, gzip };

/// Writes an IDX file (big-endian), plain or gzip. Throws DataError on I/O failure.
void write_idx(const std::filesystem::path& path, const IdxArray& array,
               Compression compression = Compression::none);

}  // namespace datasets
