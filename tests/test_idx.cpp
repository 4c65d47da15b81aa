// IDX files: round trips of every type and rank, plain and gzip, and every kind of bad
// input, each of which must name the file and the problem.
#include <doctest/doctest.h>

#include <zlib.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "datasets/dataset.hpp"
#include "datasets/error.hpp"
#include "datasets/idx.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using datasets::Compression;
using datasets::DataError;
using datasets::IdxArray;
using datasets::IdxType;
using Bytes = std::vector<std::uint8_t>;

namespace {

void write_bytes(const fs::path& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

void write_gz_bytes(const fs::path& path, const Bytes& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

Bytes read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

// The DataError message `f` throws; fails the test if it throws nothing.
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const DataError& e) {
    return e.what();
  }
  FAIL("expected a DataError");
  return "";
}

void check_read_error(const fs::path& path, std::initializer_list<const char*> parts) {
  std::string msg = error_of([&] { datasets::read_idx(path); });
  INFO("message: " << msg);
  CHECK(msg.find(path.string()) != std::string::npos);
  for (const char* p : parts) CHECK(msg.find(p) != std::string::npos);
}

std::size_t product(const std::vector<std::size_t>& dims) {
  std::size_t n = 1;
  for (auto d : dims) n *= d;
  return n;
}

const std::vector<std::vector<std::size_t>> kShapes = {{7}, {3, 5}, {2, 3, 4}, {2, 1, 3, 2}};

}  // namespace

TEST_CASE("u8 and f32 arrays of ranks 1 to 4 survive a round trip, plain and gzip") {
  TempDir dir("idx");
  for (Compression c : {Compression::none, Compression::gzip}) {
    for (const auto& dims : kShapes) {
      const std::size_t n = product(dims);
      Bytes bytes(n);
      std::vector<float> floats(n);
      for (std::size_t i = 0; i < n; ++i) {
        bytes[i] = static_cast<std::uint8_t>(i * 37 % 256);
        floats[i] = static_cast<float>(i) * 0.375F - 2.0F;
      }
      fs::path pb = dir.path / "bytes";
      fs::path pf = dir.path / "floats";
      datasets::write_idx(pb, IdxArray(dims, bytes), c);
      datasets::write_idx(pf, IdxArray(dims, floats), c);
      // The gzip magic is 1f 8b; a plain IDX file starts 00 00 <type> <rank>.
      Bytes raw = read_bytes(pb);
      if (c == Compression::gzip) {
        CHECK(raw[0] == 0x1f);
        CHECK(raw[1] == 0x8b);
      } else {
        CHECK(raw == [&] {
          Bytes h{0, 0, 0x08, static_cast<std::uint8_t>(dims.size())};
          for (auto d : dims) h.insert(h.end(), {0, 0, 0, static_cast<std::uint8_t>(d)});
          h.insert(h.end(), bytes.begin(), bytes.end());
          return h;
        }());
      }
      IdxArray rb = datasets::read_idx(pb);
      IdxArray rf = datasets::read_idx(pf);
      CHECK(rb.type() == IdxType::U8);
      CHECK(rf.type() == IdxType::F32);
      CHECK(rb.dims() == dims);
      CHECK(rf.dims() == dims);
      CHECK(rb.bytes() == bytes);
      CHECK(rf.values<float>() == floats);
    }
  }
}

TEST_CASE("every IDX element type round-trips and is stored big-endian") {
  TempDir dir("idx");
  fs::path p = dir.path / "x";
  auto round_trip = [&](auto values, IdxType type) {
    using T = typename decltype(values)::value_type;
    IdxArray a({values.size()}, values);
    CHECK(a.type() == type);
    datasets::write_idx(p, a);
    IdxArray b = datasets::read_idx(p);
    CHECK(b.type() == type);
    CHECK(b.values<T>() == values);
  };
  round_trip(std::vector<std::int8_t>{-128, -1, 0, 127}, IdxType::I8);
  round_trip(std::vector<std::int16_t>{-32768, -2, 258, 32767}, IdxType::I16);
  round_trip(std::vector<std::int32_t>{-2147483647 - 1, -3, 16909060, 2147483647}, IdxType::I32);
  round_trip(std::vector<double>{-1.5, 1e-300, 1e300, 0.1}, IdxType::F64);

  datasets::write_idx(p, IdxArray({1}, std::vector<std::int16_t>{0x0102}));
  CHECK(read_bytes(p) == Bytes{0, 0, 0x0B, 1, 0, 0, 0, 1, 0x01, 0x02});
  datasets::write_idx(p, IdxArray({1}, std::vector<float>{1.0F}));  // 0x3f800000
  CHECK(read_bytes(p) == Bytes{0, 0, 0x0D, 1, 0, 0, 0, 1, 0x3f, 0x80, 0, 0});

  IdxArray ints({2}, std::vector<std::int16_t>{-5, 7});
  CHECK(ints.to_floats() == std::vector<float>{-5.0F, 7.0F});
  CHECK(ints.to_integers() == std::vector<std::int64_t>{-5, 7});
  CHECK_THROWS_AS(ints.bytes(), std::logic_error);
  CHECK_THROWS_AS(IdxArray({2, 2}, std::vector<float>{1, 2, 3}), std::invalid_argument);
}

TEST_CASE("a missing file says so") {
  TempDir dir("idx");
  check_read_error(dir.path / "nothing-here-idx3-ubyte", {"file not found"});
}

TEST_CASE("wrong magic, unknown type, rank 0 and truncated headers name the offset") {
  TempDir dir("idx");
  fs::path p = dir.path / "bad-idx";
  write_bytes(p, {0x01, 0x02, 0x08, 0x01, 0, 0, 0, 1, 5});
  check_read_error(p, {"bad magic number", "byte offset 0", "expected 00 00", "found 01 02 08 01"});

  write_bytes(p, {0, 0, 0x07, 1, 0, 0, 0, 1, 5});
  check_read_error(p, {"unknown IDX type code 0x07", "byte offset 2", "0x08 (u8)"});

  write_bytes(p, {0, 0, 0x08, 0});
  check_read_error(p, {"rank 0", "byte offset 3"});

  write_bytes(p, {0, 0, 0x08});
  check_read_error(p, {"truncated header", "at least 4 bytes", "has 3"});

  write_bytes(p, {0, 0, 0x08, 3, 0, 0, 0, 2, 0, 0});
  check_read_error(p, {"truncated header", "rank 3 needs 16 header bytes", "ends after 10"});

  // The same checks run on the inflated stream of a gzip file.
  write_gz_bytes(p, {0x01, 0x02, 0x08, 0x01, 0, 0, 0, 1, 5});
  check_read_error(p, {"bad magic number", "of the decompressed stream"});
}

TEST_CASE("dims that do not match the data: truncated data and trailing garbage") {
  TempDir dir("idx");
  fs::path p = dir.path / "short-idx2-ubyte";
  Bytes header{0, 0, 0x08, 2, 0, 0, 0, 3, 0, 0, 0, 4};  // [3, 4]: 12 data bytes
  Bytes data = header;
  data.resize(header.size() + 10);
  write_bytes(p, data);
  check_read_error(p, {"truncated data", "dims [3, 4] of u8 need 12 bytes", "12-byte header", "has 10"});
  write_gz_bytes(p, data);
  check_read_error(p, {"truncated data", "decompressed stream has 10"});

  data.resize(header.size() + 15);
  write_bytes(p, data);
  check_read_error(p, {"trailing garbage", "need 12 bytes", "found 15", "3 extra bytes from byte offset 24"});
  write_gz_bytes(p, data);
  check_read_error(p, {"trailing garbage", "3 extra bytes", "of the decompressed stream"});

  // Multi-byte types count bytes, not elements: 3 floats need 12 bytes.
  write_bytes(p, {0, 0, 0x0D, 1, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  check_read_error(p, {"truncated data", "dims [3] of f32 need 12 bytes", "has 10"});
}

TEST_CASE("a gzip header claiming more than the file can inflate to is refused before reading") {
  TempDir dir("idx");
  fs::path p = dir.path / "huge-idx3-ubyte.gz";
  // Claims [60000, 28, 28] (47 MB) and holds 10 bytes: a 40-byte gzip file holds at most 41 KB.
  const Bytes data{0, 0, 0x08, 3, 0, 0, 0xEA, 0x60, 0, 0, 0, 28, 0, 0, 0, 28, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7};
  write_gz_bytes(p, data);
  check_read_error(p, {"dims [60000, 28, 28] of u8 need 47040000 bytes", "inflates to at most",
                       "header is wrong or the file is cut short"});
  // f64 [4294967295, 4294967295] overflows before any ratio: too large to hold.
  write_gz_bytes(p, {0, 0, 0x0E, 2, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3});
  check_read_error(p, {"too large to hold"});

  // A claim the compressed size allows (2 GB from 2 MB of noise) but the stream does not hold:
  // the buffer grows with what arrives, so this is a quick "truncated data", not a 2 GB zeroing.
  Bytes noisy{0, 0, 0x08, 1, 0x77, 0x35, 0x94, 0x00};  // [2000000000]
  std::uint32_t x = 12345;
  for (int i = 0; i < (2 << 20); ++i) {
    x = x * 1664525U + 1013904223U;
    noisy.push_back(static_cast<std::uint8_t>(x >> 24));
  }
  write_gz_bytes(p, noisy);
  check_read_error(p, {"truncated data", "dims [2000000000] of u8 need 2000000000 bytes",
                       "decompressed stream has 2097152"});
}

TEST_CASE("a corrupt or cut-off gzip stream is reported as such") {
  TempDir dir("idx");
  fs::path good = dir.path / "good-idx1-ubyte.gz";
  Bytes values(5000);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<std::uint8_t>(i * i % 251);
  datasets::write_idx(good, IdxArray({values.size()}, values), Compression::gzip);
  const Bytes gz = read_bytes(good);

  fs::path p = dir.path / "bad-idx1-ubyte.gz";
  Bytes crc = gz;
  crc[crc.size() - 8] ^= 0xFF;  // the CRC-32 in the gzip trailer
  write_bytes(p, crc);
  check_read_error(p, {"corrupt gzip stream", "incorrect data check"});

  Bytes block = gz;
  block[10] = 0xFF;  // the first deflate block header: a reserved block type
  write_bytes(p, block);
  check_read_error(p, {"corrupt gzip stream"});

  Bytes cut(gz.begin(), gz.begin() + static_cast<std::ptrdiff_t>(gz.size() / 2));
  write_bytes(p, cut);
  check_read_error(p, {"corrupt gzip stream", "ends early"});
}

TEST_CASE("load_idx_dataset finds the split's files and flattens examples to rows") {
  TempDir dir("idx");
  Bytes pixels(4 * 2 * 3);
  for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<std::uint8_t>(i);
  datasets::write_idx(dir.path / "train-images-idx3-ubyte.gz", IdxArray({4, 2, 3}, pixels), Compression::gzip);
  datasets::write_idx(dir.path / "train-labels-idx1-ubyte.gz", IdxArray({4}, Bytes{3, 1, 4, 1}), Compression::gzip);

  datasets::Dataset d = datasets::load_idx_dataset(dir.path, "train");
  CHECK(d.size() == 4);
  CHECK(d.features() == 6);
  CHECK(d.example_shape() == std::vector<std::size_t>{2, 3});
  CHECK(d.holds_bytes());
  CHECK(d.has_labels());
  CHECK(d.label(2) == 4);
  CHECK(Bytes(d.bytes().begin(), d.bytes().end()) == pixels);
  CHECK(d.bytes_held() == 24 + 4 * sizeof(std::int32_t));

  datasets::Dataset two = datasets::load_idx_dataset(dir.path, "train", 2);
  CHECK(two.size() == 2);
  CHECK(two.labels().size() == 2);
  CHECK(two.bytes().size() == 12);

  // Float vectors without labels, under a non-standard name: loaded as floats.
  std::vector<float> v{0.5F, -1.0F, 2.0F, 3.0F, 4.0F, 5.0F};
  datasets::write_idx(dir.path / "t10k-images-idx2-float", IdxArray({3, 2}, v));
  datasets::Dataset f = datasets::load_idx_dataset(dir.path, "t10k");
  CHECK(f.size() == 3);
  CHECK(f.features() == 2);
  CHECK_FALSE(f.holds_bytes());
  CHECK_FALSE(f.has_labels());
  CHECK(std::vector<float>(f.floats().begin(), f.floats().end()) == v);

  // Rank 1: each example is one number.
  datasets::write_idx(dir.path / "r1-images-idx1-ubyte", IdxArray({3}, Bytes{1, 2, 3}));
  datasets::Dataset r1 = datasets::load_idx_dataset(dir.path, "r1");
  CHECK(r1.size() == 3);
  CHECK(r1.features() == 1);
}

TEST_CASE("load_idx_dataset errors: no files, count mismatch, bad labels, ambiguity") {
  TempDir dir("idx");
  std::string msg = error_of([&] { datasets::load_idx_dataset(dir.path / "nope", "train"); });
  CHECK(msg.find("data folder not found") != std::string::npos);

  msg = error_of([&] { datasets::load_idx_dataset(dir.path, "train"); });
  CHECK(msg.find("no examples file for split \"train\"") != std::string::npos);
  CHECK(msg.find("train-images-idx3-ubyte[.gz]") != std::string::npos);

  datasets::write_idx(dir.path / "train-images-idx3-ubyte", IdxArray({5, 1, 2}, Bytes(10)));
  datasets::write_idx(dir.path / "train-labels-idx1-ubyte", IdxArray({4}, Bytes(4)));
  msg = error_of([&] { datasets::load_idx_dataset(dir.path, "train"); });
  INFO(msg);
  CHECK(msg.find("train-images-idx3-ubyte") != std::string::npos);
  CHECK(msg.find("train-labels-idx1-ubyte") != std::string::npos);
  CHECK(msg.find("5 examples but 4 labels") != std::string::npos);

  datasets::write_idx(dir.path / "train-labels-idx1-ubyte", IdxArray({5}, std::vector<float>(5)));
  msg = error_of([&] { datasets::load_idx_dataset(dir.path, "train"); });
  CHECK(msg.find("labels must be integers, found f32") != std::string::npos);

  datasets::write_idx(dir.path / "train-labels-idx1-ubyte", IdxArray({5, 1}, Bytes(5)));
  msg = error_of([&] { datasets::load_idx_dataset(dir.path, "train"); });
  CHECK(msg.find("labels must have rank 1") != std::string::npos);

  // Class numbers count from 0, as in .npy files (a conditional model failed on -1 mid-run).
  datasets::write_idx(dir.path / "train-labels-idx1-ubyte", IdxArray({5}, std::vector<std::int32_t>{0, 1, 2, -1, 3}));
  msg = error_of([&] { datasets::load_idx_dataset(dir.path, "train"); });
  CHECK(msg.find("label -1 (entry 3) is out of range") != std::string::npos);

  // A NaN among float examples is the data's fault (it surfaced as a diverging loss).
  std::filesystem::remove(dir.path / "train-labels-idx1-ubyte");
  datasets::write_idx(dir.path / "train-images-idx3-ubyte", IdxArray({2, 1, 2}, std::vector<double>{0, 1, 0.5, NAN}));
  msg = error_of([&] { datasets::load_idx_dataset(dir.path, "train"); });
  CHECK(msg.find("train-images-idx3-ubyte: example 1 holds a non-finite value (nan)") != std::string::npos);

  datasets::write_idx(dir.path / "val-images-idx2-a", IdxArray({1, 1}, Bytes(1)));
  datasets::write_idx(dir.path / "val-images-idx2-b", IdxArray({1, 1}, Bytes(1)));
  msg = error_of([&] { datasets::load_idx_dataset(dir.path, "val"); });
  CHECK(msg.find("several images files") != std::string::npos);
}
