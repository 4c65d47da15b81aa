// The .npy, CSV and image readers on bytes made here: round trips and bad input.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <jpeglib.h>
#include <xtensor/xarray.hpp>
#include <xtensor/xnpy.hpp>
#include <zlib.h>

#include "datasets/csv.hpp"
#include "datasets/error.hpp"
#include "datasets/image_folder.hpp"
#include "datasets/npy.hpp"
#include "datasets/source.hpp"
#include "temp_dir.hpp"

using datasets::DataError;

namespace {

template <class T>
std::string npy_of(const xt::xarray<T>& a) { return xt::dump_npy(a); }

std::string be32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

// One PNG chunk: length, type, data, and the CRC of type and data.
std::string png_chunk(const std::string& type, const std::string& data) {
  const std::string body = type + data;
  const auto crc = static_cast<std::uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size())));
  return be32(static_cast<std::uint32_t>(data.size())) + body + be32(crc);
}

std::string deflated(const std::string& raw) {
  uLongf size = compressBound(static_cast<uLong>(raw.size()));
  std::string out(size, '\0');
  REQUIRE(compress(reinterpret_cast<Bytef*>(out.data()), &size, reinterpret_cast<const Bytef*>(raw.data()),
                   static_cast<uLong>(raw.size())) == Z_OK);
  out.resize(size);
  return out;
}

// A gray 8-bit PNG of `width` x `height` whose IDAT holds `raw` (filter bytes included).
std::string gray_png(std::uint32_t width, std::uint32_t height, bool interlaced, const std::string& raw) {
  std::string ihdr = be32(width) + be32(height);
  ihdr += std::string{8, 0, 0, 0, static_cast<char>(interlaced ? 1 : 0)};
  return std::string("\x89PNG\r\n\x1a\n", 8) + png_chunk("IHDR", ihdr) + png_chunk("IDAT", deflated(raw)) +
         png_chunk("IEND", "");
}

std::uint8_t test_pixel(std::size_t x, std::size_t y) { return static_cast<std::uint8_t>(x * 10 + y * 50); }

// A version-1 .npy file as numpy writes it: the header dict padded with spaces to a multiple of
// 64 bytes, then `data` as given (so byte order and layout are the test's to choose).
std::string npy_file(const std::string& dtype, const std::string& shape, bool fortran, const std::string& data) {
  std::string header = "{'descr': '" + dtype + "', 'fortran_order': " + (fortran ? "True" : "False") +
                       ", 'shape': " + shape + ", }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  return std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(header.size() & 0xFF) +
         static_cast<char>(header.size() >> 8) + header + data;
}

// The bytes of `values`, most significant first when `big_endian`.
template <class T>
std::string bytes_of(std::initializer_list<T> values, bool big_endian) {
  std::string out;
  for (T v : values) {
    char word[sizeof(T)];
    std::memcpy(word, &v, sizeof(T));
    if (big_endian) std::reverse(word, word + sizeof(T));
    out.append(word, sizeof(T));
  }
  return out;
}

std::vector<float> floats_of(const datasets::Dataset& d) { return {d.floats().begin(), d.floats().end()}; }

}  // namespace

TEST_CASE("npy: uint8 and float arrays round-trip with their example shape") {
  xt::xarray<std::uint8_t> bytes = xt::xarray<std::uint8_t>::from_shape({3, 2, 4});
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes.data()[i] = static_cast<std::uint8_t>(i * 7);
  const datasets::Dataset d = datasets::parse_npy_dataset(npy_of(bytes), "b.npy");
  CHECK(d.size() == 3);
  CHECK(d.features() == 8);
  CHECK(d.holds_bytes());
  CHECK(d.example_shape() == std::vector<std::size_t>{2, 4});
  CHECK(d.bytes()[13] == 91);

  xt::xarray<double> reals = {{0.5, -1.25}, {3.0, 1e-3}};
  const datasets::Dataset f = datasets::parse_npy_dataset(npy_of(reals), "r.npy");
  CHECK(f.size() == 2);
  CHECK(!f.holds_bytes());
  CHECK(f.floats()[1] == -1.25F);
  CHECK(f.floats()[3] == doctest::Approx(1e-3));

  xt::xarray<std::int64_t> labels = {3, 1, 4};
  CHECK(datasets::parse_npy_labels(npy_of(labels), "l.npy") == std::vector<std::int32_t>{3, 1, 4});
}

TEST_CASE("npy: every numpy number type, either byte order, C or Fortran order, reads as the same values") {
  using V = std::vector<float>;
  CHECK(floats_of(datasets::parse_npy_dataset(npy_file(">f4", "(2, 2)", false, bytes_of<float>({1.5F, -2, 0.25F, 3}, true)), "a")) ==
        V{1.5F, -2, 0.25F, 3});
  CHECK(floats_of(datasets::parse_npy_dataset(npy_file(">f8", "(1, 2)", false, bytes_of<double>({0.5, -7}, true)), "a")) ==
        V{0.5F, -7});
  CHECK(floats_of(datasets::parse_npy_dataset(npy_file(">i2", "(1, 3)", false, bytes_of<std::int16_t>({-300, 2, 1000}, true)), "a")) ==
        V{-300, 2, 1000});
  CHECK(floats_of(datasets::parse_npy_dataset(npy_file("<u2", "(1, 2)", false, bytes_of<std::uint16_t>({65535, 7}, false)), "a")) ==
        V{65535, 7});
  CHECK(floats_of(datasets::parse_npy_dataset(npy_file("<i8", "(2,)", false, bytes_of<std::int64_t>({-5, 9}, false)), "a")) ==
        V{-5, 9});
  CHECK(floats_of(datasets::parse_npy_dataset(npy_file(">u4", "(1, 2)", false, bytes_of<std::uint32_t>({70000, 1}, true)), "a")) ==
        V{70000, 1});
  CHECK(floats_of(datasets::parse_npy_dataset(npy_file("|i1", "(1, 2)", false, bytes_of<std::int8_t>({-128, 127}, false)), "a")) ==
        V{-128, 127});
  CHECK(floats_of(datasets::parse_npy_dataset(npy_file("|b1", "(1, 3)", false, std::string("\x01\x00\x01", 3)), "a")) ==
        V{1, 0, 1});
  // float16: 1, -2, the smallest subnormal 2^-24, 65504 (the largest), and 0x3555 = 0.333251953125
  CHECK(floats_of(datasets::parse_npy_dataset(
            npy_file("<f2", "(1, 5)", false, bytes_of<std::uint16_t>({0x3C00, 0xC000, 0x0001, 0x7BFF, 0x3555}, false)), "a")) ==
        V{1, -2, std::ldexp(1.0F, -24), 65504, 0.333251953125F});
  CHECK_THROWS_WITH_AS(datasets::parse_npy_dataset(npy_file("<f2", "(1, 1)", false, bytes_of<std::uint16_t>({0x7C00}, false)), "h.npy"),
                       doctest::Contains("non-finite"), DataError);
  // Fortran order: element (i, j, k) of a [2, 2, 3] array sits at i + 2 j + 4 k
  std::string column_major;
  std::vector<float> row_major(12);
  for (std::size_t k = 0; k < 3; ++k)
    for (std::size_t j = 0; j < 2; ++j)
      for (std::size_t i = 0; i < 2; ++i) {
        const float v = static_cast<float>(100 * i + 10 * j + k);
        row_major[i * 6 + j * 3 + k] = v;
        column_major += bytes_of<float>({v}, false);
      }
  const datasets::Dataset f = datasets::parse_npy_dataset(npy_file("<f4", "(2, 2, 3)", true, column_major), "f.npy");
  CHECK(f.example_shape() == std::vector<std::size_t>{2, 3});
  CHECK(floats_of(f) == row_major);
  const datasets::Dataset fb = datasets::parse_npy_dataset(npy_file("|u1", "(2, 3)", true, "\x01\x04\x02\x05\x03\x06"), "fb.npy");
  CHECK(fb.holds_bytes());
  CHECK(std::vector<std::uint8_t>(fb.bytes().begin(), fb.bytes().end()) == std::vector<std::uint8_t>{1, 2, 3, 4, 5, 6});
  CHECK_THROWS_WITH_AS(datasets::parse_npy_dataset(npy_file("<c8", "(1, 1)", false, std::string(8, '\0')), "c.npy"),
                       doctest::Contains("'<c8' is not a number type"), DataError);
  CHECK_THROWS_WITH_AS(datasets::parse_npy_dataset(npy_file("<U1", "(1, 1)", false, std::string(4, 'a')), "u.npy"),
                       doctest::Contains("'<U1'"), DataError);
}

TEST_CASE("npy: labels of any integer type, or floats holding whole numbers") {
  using L = std::vector<std::int32_t>;
  CHECK(datasets::parse_npy_labels(npy_file(">i8", "(3,)", false, bytes_of<std::int64_t>({3, 0, 9}, true)), "l") == L{3, 0, 9});
  CHECK(datasets::parse_npy_labels(npy_file("<u2", "(2,)", false, bytes_of<std::uint16_t>({1, 40000}, false)), "l") == L{1, 40000});
  CHECK(datasets::parse_npy_labels(npy_file("<f8", "(2,)", false, bytes_of<double>({2.0, 5.0}, false)), "l") == L{2, 5});
  CHECK_THROWS_WITH_AS(datasets::parse_npy_labels(npy_file("<f4", "(2,)", false, bytes_of<float>({1, 2.5F}, false)), "l.npy"),
                       doctest::Contains("label 2.5 (entry 1) is not a whole number"), DataError);
  CHECK_THROWS_WITH_AS(datasets::parse_npy_labels(npy_file("<i4", "(2,)", false, bytes_of<std::int32_t>({1, -1}, false)), "l.npy"),
                       doctest::Contains("label -1 (entry 1) is out of range"), DataError);
  CHECK_THROWS_WITH_AS(datasets::parse_npy_labels(npy_file("|b1", "(1,)", false, std::string(1, '\1')), "l.npy"),
                       doctest::Contains("labels of dtype '|b1'"), DataError);
}

TEST_CASE("npy: channels-first images [N, C, H, W] are held as [N, H, W, C]; other shapes are left alone") {
  // value = 100 * image + 10 * channel + pixel, so each one says where it came from
  xt::xarray<float> planar = xt::xarray<float>::from_shape({2, 3, 2, 4});
  for (std::size_t i = 0; i < 2; ++i)
    for (std::size_t c = 0; c < 3; ++c)
      for (std::size_t p = 0; p < 8; ++p) planar(i, c, p / 4, p % 4) = static_cast<float>(100 * i + 10 * c + p);
  datasets::Dataset d = datasets::parse_npy_dataset(npy_of(planar), "p.npy");
  CHECK(!d.channels_first());
  CHECK(d.interleave_channels());
  CHECK(d.channels_first());
  CHECK(d.example_shape() == std::vector<std::size_t>{2, 4, 3});
  for (std::size_t i = 0; i < 2; ++i)
    for (std::size_t p = 0; p < 8; ++p)
      for (std::size_t c = 0; c < 3; ++c) CHECK(d.floats()[i * 24 + p * 3 + c] == static_cast<float>(100 * i + 10 * c + p));
  CHECK(!d.interleave_channels());  // now channels last: a second call changes nothing

  xt::xarray<std::uint8_t> gray = xt::xarray<std::uint8_t>::from_shape({2, 1, 4, 5});
  for (std::size_t i = 0; i < gray.size(); ++i) gray.data()[i] = static_cast<std::uint8_t>(i);
  datasets::Dataset g = datasets::parse_npy_dataset(npy_of(gray), "g.npy");
  CHECK(g.interleave_channels());
  CHECK(g.example_shape() == std::vector<std::size_t>{4, 5});
  CHECK(g.bytes()[27] == 27);

  for (const std::vector<std::size_t>& shape : {std::vector<std::size_t>{2, 4, 4, 3}, {2, 3, 4, 1}, {2, 4, 5, 6}, {2, 3, 4}}) {
    datasets::Dataset other = datasets::parse_npy_dataset(npy_of(xt::xarray<float>(xt::zeros<float>(shape))), "o.npy");
    const std::vector<std::size_t> before = other.example_shape();
    CHECK(!other.interleave_channels());
    CHECK(other.example_shape() == before);
    CHECK(!other.channels_first());
  }
}

TEST_CASE("npy: bad files are refused with the reason, before allocating") {
  xt::xarray<float> a = {{1, 2}, {3, 4}};
  const std::string good = npy_of(a);
  CHECK_THROWS_WITH_AS(datasets::parse_npy_dataset(good.substr(0, good.size() - 3), "t.npy"),
                       doctest::Contains("truncated"), DataError);
  CHECK_THROWS_WITH_AS(datasets::parse_npy_dataset("\x93NUMPZ" + good.substr(6), "m.npy"),
                       doctest::Contains("not an .npy file"), DataError);
  CHECK_THROWS_WITH_AS(datasets::parse_npy_dataset(good + "xx", "long.npy"), doctest::Contains("the file has"),
                       DataError);
  // A header claiming 2^62 values in a tiny file.
  std::string huge = good;
  const auto at = huge.find("(2, 2)");
  REQUIRE(at != std::string::npos);
  huge.replace(at, 6, "(4611686018427387904, 2)");
  CHECK_THROWS_AS(datasets::parse_npy_dataset(huge, "h.npy"), DataError);
  std::string empty_header = good.substr(0, 8) + std::string("\x01\x00\n", 3);
  CHECK_THROWS_AS(datasets::parse_npy_dataset(empty_header, "e.npy"), DataError);
  for (std::size_t cut = 0; cut < good.size(); cut += 7) CHECK_THROWS_AS(datasets::parse_npy_dataset(good.substr(0, cut), "c.npy"), DataError);
  // A shape that is not a tuple of whole numbers: xtensor's parser read (-1, 2) as
  // (18446744073709551615, 2) ("too large"), (2.5, 2) as (2, 2), ((2,),) as (0,).
  for (const char* shape : {"(-1, 2)", "(2.5, 2)", "((2,), 2)", "(2,,2)", "(,2)", "(2 x 2)"})
    CHECK_THROWS_WITH_AS(datasets::parse_npy_dataset(npy_file("<f4", shape, false, bytes_of<float>({1, 2, 3, 4}, false)), "s.npy"),
                         doctest::Contains("the shape is not a tuple of whole numbers"), DataError);
  CHECK(datasets::parse_npy_dataset(npy_file("<f4", "(2,2)", false, bytes_of<float>({1, 2, 3, 4}, false)), "s.npy").size() == 2);
  // Python 2's numpy wrote long integers with an L; numpy reads such files still, and so do we.
  const datasets::Dataset longs =
      datasets::parse_npy_dataset(npy_file("<f4", "(2L, 2L)", false, bytes_of<float>({1, 2, 3, 4}, false)), "l.npy");
  CHECK(longs.size() == 2);
  CHECK(longs.features() == 2);
  CHECK_THROWS_AS(datasets::parse_npy_dataset(npy_file("<f4", "(L2, 2)", false, bytes_of<float>({1, 2, 3, 4}, false)), "l.npy"),
                  DataError);
}

TEST_CASE("csv: header, label column and the cell that is wrong") {
  const datasets::Dataset d = datasets::parse_csv_dataset("y,a,b\n1,0.5,0.25\n# comment\n\n0,1,2\n", "p.csv", 1);
  CHECK(d.size() == 2);
  CHECK(d.features() == 2);
  CHECK(d.has_labels());
  CHECK(d.label(0) == 1);
  CHECK(d.floats()[1] == 0.25F);
  CHECK(datasets::parse_csv_dataset("1,2\n3,4\n", "n.csv").size() == 2);  // no header
  CHECK_THROWS_WITH_AS(datasets::parse_csv_dataset("1,2,3\n4,five,6\n", "s.csv"),
                       doctest::Contains("s.csv:2: column 2: 'five' is not a number"), DataError);
  CHECK_THROWS_WITH_AS(datasets::parse_csv_dataset("1,2,3\n4,5\n", "r.csv"), doctest::Contains("r.csv:2: 2 cells"),
                       DataError);
  // UTF-16 (a spreadsheet's "Unicode text"): the message stopped at the first cell's NUL byte.
  const std::string utf16("\xFF\xFE" "1\0,\0" "2\0\n\0", 10);
  CHECK_THROWS_WITH_AS(datasets::parse_csv_dataset(utf16, "u.csv"),
                       doctest::Contains("u.csv: the file is UTF-16 or UTF-32 text"), DataError);
  CHECK_THROWS_WITH_AS(datasets::parse_csv_dataset(std::string("1,2\n\0" "3,4\n", 9), "z.csv"),
                       doctest::Contains("z.csv:2: column 1: '\\x003' is not a number"), DataError);
  // A cell of a megabyte is quoted by its first 40 bytes.
  const std::string long_cell = "1,2\n3," + std::string(1 << 20, 'x') + "\n";
  try {
    datasets::parse_csv_dataset(long_cell, "l.csv");
    FAIL("no error");
  } catch (const DataError& e) {
    CHECK(std::string(e.what()) == "l.csv:2: column 2: '" + std::string(40, 'x') + "...' is not a number");
  }
  CHECK_THROWS_WITH_AS(datasets::parse_csv_dataset("1,2\n3,nan\n", "n.csv"),
                       doctest::Contains("n.csv:2: column 2: 'nan' is not a finite float32 number"), DataError);
  // A first row written as numbers a float cannot hold was taken for a header and dropped.
  CHECK_THROWS_WITH_AS(datasets::parse_csv_dataset("1e40,2\n3,4\n", "o.csv"),
                       doctest::Contains("o.csv:1: column 1: '1e40' is not a finite float32 number"), DataError);
  CHECK_THROWS_WITH_AS(datasets::parse_csv_dataset("nan,2\n3,4\n", "o.csv"), doctest::Contains("o.csv:1: column 1"),
                       DataError);
  // Too small for a float (float64 data): 0, not a refusal (nor a header, in the first row).
  const datasets::Dataset tiny = datasets::parse_csv_dataset("1e-50,2\n3,-1e-300\n", "t.csv");
  CHECK(tiny.size() == 2);
  CHECK(tiny.floats()[0] == 0.0F);
  CHECK(tiny.floats()[3] == 0.0F);
  CHECK_THROWS_WITH_AS(datasets::parse_csv_dataset("a,b\n", "h.csv"), doctest::Contains("no rows"), DataError);
  CHECK_THROWS_WITH_AS(datasets::parse_csv_dataset("0.5,1\n", "l.csv", 1), doctest::Contains("label"), DataError);
  CHECK_THROWS_AS(datasets::parse_csv_dataset("1,2\n", "c.csv", 3), DataError);
}

TEST_CASE("csv: spreadsheet dialects (quoted numbers, +signs, semicolons, tabs, a byte-order mark, CRLF) read the same values") {
  const std::vector<float> want = {0.5F, 0.25F, 1, 2};
  for (const std::string& text : {std::string("0.5,0.25\n1,2\n"), std::string("\"a\",\"b\"\n\"0.5\",\"0.25\"\n\"1\",\"2\"\n"),
                                 std::string("a;b\r\n+0.5;0.25\r\n1;+2\r\n"), std::string("a\tb\n0.5\t0.25\n1\t2\n"),
                                 std::string("\xEF\xBB\xBF" "0.5, 0.25\n 1 , 2\n")}) {
    CAPTURE(text);
    const datasets::Dataset d = datasets::parse_csv_dataset(text, "d.csv");
    CHECK(std::vector<float>(d.floats().begin(), d.floats().end()) == want);  // the mark did not make row 1 a header
  }
  CHECK_THROWS_WITH_AS(datasets::parse_csv_dataset("a;b\n1;+-2\n", "p.csv"), doctest::Contains("p.csv:2: column 2: '+-2'"),
                       DataError);
}

TEST_CASE("images: a PNG header claiming more pixels than its bytes can inflate to is refused") {
  // Signature, then an IHDR chunk for a 30000 x 2000 gray image (60 M pixels, under the 2^26
  // cap) and nothing else: 33 bytes cannot inflate to 2000 rows of at least 3751 bytes.
  std::string png("\x89PNG\r\n\x1a\n", 8);
  const unsigned char ihdr[] = {0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 0x75, 0x30, 0, 0, 0x07, 0xd0, 8, 0, 0, 0, 0};
  png.append(reinterpret_cast<const char*>(ihdr), sizeof ihdr);
  png.append("\0\0\0\0", 4);  // CRC (never read: the size check refuses the file first)
  CHECK_THROWS_WITH_AS(datasets::decode_image(png, 1, "bomb.png"), doctest::Contains("more than a 33-byte PNG can hold"),
                       DataError);
}

TEST_CASE("images: a PNG past 2^26 pixels is refused after libpng read its header, nothing leaked") {
  // 8193 x 8193 zeros: the deflated bytes can hold them, so libpng reads the header and
  // the size check refuses it; libpng's structs leaked there (LeakSanitizer, scripts/sanitize.sh).
  const std::uint32_t side = 8193;
  const std::string png = gray_png(side, side, false, std::string(std::size_t{side} * (side + 1), '\0'));
  CHECK_THROWS_WITH_AS(datasets::decode_image(png, 1, "large.png"),
                       doctest::Contains("large.png: 8193x8193 pixels is not a size this reader accepts"), DataError);
}

TEST_CASE("images: an interlaced (Adam7) PNG decodes to the right pixels") {
  // The seven passes laid out by hand, each row a filter byte (0, none) and its pixels: the
  // size check must agree with the decoder on the interlaced layout, odd sizes included.
  const std::size_t width = 5, height = 3;
  const std::size_t passes[7][4] = {{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4},
                                    {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}};
  std::string raw;
  for (const auto& pass : passes) {
    if (pass[0] >= width || pass[1] >= height) continue;
    for (std::size_t y = pass[1]; y < height; y += pass[3]) {
      raw.push_back(0);
      for (std::size_t x = pass[0]; x < width; x += pass[2]) raw.push_back(static_cast<char>(test_pixel(x, y)));
    }
  }
  const datasets::Image image = datasets::decode_image(gray_png(width, height, true, raw), 1, "adam7.png");
  REQUIRE(image.height == height);
  REQUIRE(image.width == width);
  for (std::size_t y = 0; y < height; ++y)
    for (std::size_t x = 0; x < width; ++x) CHECK(image.pixels[y * width + x] == test_pixel(x, y));
}

TEST_CASE("images: a PNG whose data inflates far beyond its header's size decodes to the declared size only") {
  // A 4x4 image needs 4 rows of 1 + 4 bytes; 8 MB of zeros deflate to about 8 KB. libpng
  // inflates row by row and stops at the image's end, so the file costs 16 pixels, not 8 MB.
  const std::string bomb = gray_png(4, 4, false, std::string(8 << 20, '\0'));
  CHECK(bomb.size() < 20000);
  const datasets::Image image = datasets::decode_image(bomb, 1, "bomb.png");
  CHECK(image.pixels == std::vector<std::uint8_t>(16, 0));
  // Too little data is an error that names the file.
  CHECK_THROWS_WITH_AS(datasets::decode_image(gray_png(4, 4, false, std::string(19, '\0')), 1, "short.png"),
                       doctest::Contains("short.png: cannot decode the PNG"), DataError);
}

TEST_CASE("images: a PNG chunk claiming more bytes than the file holds is refused before any allocation") {
  // The fuzzer's finding with the stb_image decoder used before: an IDAT chunk whose length
  // field says 2 GB made it reallocate 2 GB before it read the few bytes behind it.
  std::string png = gray_png(4, 4, false, std::string(20, '\0'));
  const std::size_t idat = png.find("IDAT") - 4;
  png.replace(idat, 4, be32(0x7ff00000u));
  CHECK_THROWS_WITH_AS(datasets::decode_image(png, 1, "huge-chunk.png"),
                       doctest::Contains("chunk 'IDAT' at byte 33 claims 2146435072 bytes"), DataError);
}

TEST_CASE("images: a JPEG header claiming more pixels than its bytes can encode is refused") {
  // SOI, a baseline SOF0 for an 8000 x 8000 gray image (under the 2^26-pixel cap), a scan
  // header and EOI: 27 bytes cannot hold a million 8x8 blocks.
  const unsigned char jpeg[] = {0xFF, 0xD8, 0xFF, 0xC0, 0, 11, 8, 0x1F, 0x40, 0x1F, 0x40, 1, 1, 0x11, 0,
                                0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 0x3F, 0, 0xFF, 0xD9};
  const std::string bytes(reinterpret_cast<const char*>(jpeg), sizeof jpeg);
  CHECK_THROWS_WITH_AS(datasets::decode_image(bytes, 1, "bomb.jpg"),
                       doctest::Contains("8000x8000 pixels, more than 27 bytes can encode"), DataError);
}

TEST_CASE("images: a JPEG Huffman table with more than 256 codes is refused") {
  // SOI, a baseline SOF0 for an 8x8 gray image, then a DHT whose sixteen counts claim 16 x 20 =
  // 320 codes (Debian's stb_image, used before, wrote past its table on this).
  std::string jpeg("\xFF\xD8\xFF\xC0\x00\x0B\x08\x00\x08\x00\x08\x01\x01\x11\x00", 15);
  jpeg += std::string("\xFF\xC4", 2) + static_cast<char>((19 + 320) >> 8) + static_cast<char>((19 + 320) & 0xFF);
  jpeg += '\x00';                                    // DC table 0
  jpeg += std::string(16, '\x14');                   // 20 codes of each length
  jpeg += std::string(320, '\x01');                  // their symbols
  jpeg += std::string("\xFF\xD9", 2);
  CHECK_THROWS_WITH_AS(datasets::decode_image(jpeg, 1, "dht.jpg"), doctest::Contains("dht.jpg: cannot decode the JPEG"),
                       DataError);
}

// A 16x16 JPEG of one CMYK color, written by libjpeg as `space` (CMYK or YCCK), with or
// without Adobe's marker (which says the inks are stored inverted).
std::string one_color_cmyk_jpeg(std::array<JSAMPLE, 4> stored, J_COLOR_SPACE space, bool adobe_marker) {
  constexpr unsigned kSide = 16;
  jpeg_compress_struct jpeg;
  jpeg_error_mgr errors;
  jpeg.err = jpeg_std_error(&errors);
  jpeg_create_compress(&jpeg);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&jpeg, &buffer, &size);
  jpeg.image_width = jpeg.image_height = kSide;
  jpeg.input_components = 4;
  jpeg.in_color_space = JCS_CMYK;
  jpeg_set_defaults(&jpeg);
  jpeg_set_colorspace(&jpeg, space);
  jpeg_set_quality(&jpeg, 100, TRUE);
  jpeg.write_Adobe_marker = adobe_marker ? TRUE : FALSE;
  jpeg_start_compress(&jpeg, TRUE);
  std::vector<JSAMPLE> row(kSide * 4);
  for (unsigned x = 0; x < kSide; ++x) std::copy(stored.begin(), stored.end(), row.begin() + 4 * x);
  while (jpeg.next_scanline < kSide) {
    JSAMPROW rows[1] = {row.data()};
    jpeg_write_scanlines(&jpeg, rows, 1);
  }
  jpeg_finish_compress(&jpeg);
  jpeg_destroy_compress(&jpeg);
  std::string bytes(reinterpret_cast<const char*>(buffer), size);
  std::free(buffer);
  return bytes;
}

void check_every_pixel(const datasets::Image& image, std::vector<int> expected) {
  REQUIRE(image.pixels.size() == 16 * 16 * expected.size());
  for (std::size_t i = 0; i < image.pixels.size(); ++i)
    CHECK(std::abs(int{image.pixels[i]} - expected[i % expected.size()]) <= 2);
}

TEST_CASE("images: CMYK and YCCK JPEGs (print files) decode to RGB and gray, Adobe's inverted inks or not") {
  for (const J_COLOR_SPACE space : {JCS_CMYK, JCS_YCCK}) {
    CAPTURE(space);
    // Adobe: 255 is no ink. Magenta and yellow inks, no cyan, no black: red.
    const std::string red = one_color_cmyk_jpeg({255, 0, 0, 255}, space, true);
    check_every_pixel(datasets::decode_image(red, 3, "red.jpg"), {255, 0, 0});
    check_every_pixel(datasets::decode_image(red, 1, "red.jpg"), {76});  // red's luma, 0.299 * 255
    // Half black, no color ink: mid gray.
    const std::string gray = one_color_cmyk_jpeg({255, 255, 255, 128}, space, true);
    check_every_pixel(datasets::decode_image(gray, 3, "gray.jpg"), {128, 128, 128});
    // Without the marker the inks are stored as they are: cyan ink alone is cyan. (YCCK needs
    // the marker: it is what says the file is YCCK.)
    if (space == JCS_YCCK) continue;
    const std::string cyan = one_color_cmyk_jpeg({255, 0, 0, 0}, space, false);
    check_every_pixel(datasets::decode_image(cyan, 3, "cyan.jpg"), {0, 255, 255});
    check_every_pixel(datasets::decode_image(cyan, 1, "cyan.jpg"), {179});  // (0.587 + 0.114) * 255
  }
}

TEST_CASE("images: bytes that are not an image are refused") {
  CHECK_THROWS_WITH_AS(datasets::decode_image("not an image", 1, "x.png"), doctest::Contains("x.png"), DataError);
  CHECK_THROWS_AS(datasets::decode_image("", 1, "e.png"), DataError);
  CHECK_THROWS_WITH_AS(datasets::decode_image("\x89PNG\r\n\x1a\n", 2, "c.png"), doctest::Contains("channels"),
                       DataError);
}

TEST_CASE("images: a test split's class subfolders are labelled as the training split's, one it lacks or not") {
  // train/{a,b,c}, test/{a,c}: numbered by its own subfolders, test/c was labelled 1 (b's).
  TempDir root("image-splits");
  const std::string png = gray_png(2, 2, false, std::string(3 * 2, '\0'));
  auto put = [&](const std::string& folder) {
    std::filesystem::create_directories(root.path / folder);
    std::ofstream(root.path / folder / "0.png", std::ios::binary) << png;
  };
  for (const char* folder : {"train/a", "train/b", "train/c", "test/a", "test/c"}) put(folder);
  const datasets::Dataset test = datasets::load_source(root.path, "test", {});
  REQUIRE(test.size() == 2);
  CHECK(test.label(0) == 0);
  CHECK(test.label(1) == 2);
  CHECK(test.label_names() == std::vector<std::string>{"a", "b", "c"});
  CHECK(datasets::load_source(root.path, "train", {}).label(2) == 2);
  // A test class the training split does not have has no label the model knows.
  put("test/d");
  CHECK_THROWS_WITH_AS(datasets::load_source(root.path, "test", {}),
                       doctest::Contains("test/d: class 'd' is not one of the training split's (a, b, c)"), DataError);
}

TEST_CASE("images: a class takes the images in its own subfolders too, as torchvision's ImageFolder") {
  // a/1.png, a/x/0.png and b/2.png: a/x/0.png was passed over without a word.
  TempDir root("image-nested");
  auto put = [&](const std::string& file, char value) {
    std::filesystem::create_directories((root.path / file).parent_path());
    std::ofstream(root.path / file, std::ios::binary) << gray_png(2, 2, false, std::string{0, value, value, 0, value, value});
  };
  put("a/x/0.png", 30);
  put("a/1.png", 10);
  put("a/z.png", 20);
  put("b/2.png", 40);
  const datasets::Dataset d = datasets::read_image_folder(root.path, 1);
  REQUIRE(d.size() == 4);
  CHECK(d.label_names() == std::vector<std::string>{"a", "b"});
  const std::vector<std::int32_t> labels(d.labels().begin(), d.labels().end());
  CHECK(labels == std::vector<std::int32_t>{0, 0, 0, 1});
  // a's own images first, in name order, then those of a/x
  CHECK(d.bytes()[0] == 10);
  CHECK(d.bytes()[4] == 20);
  CHECK(d.bytes()[8] == 30);
  CHECK(datasets::image_folder_classes(root.path) == std::vector<std::string>{"a", "b"});
}

TEST_CASE("images: a folder's classes numbered as a model's by name (number_classes_as)") {
  // vae evaluate MODEL --data tree/test, test/{a,c} for a model of a, b, c: c was labelled 1 (b).
  TempDir root("image-renumber");
  const std::string png = gray_png(2, 2, false, std::string(3 * 2, '\0'));
  for (const char* folder : {"a", "c"}) {
    std::filesystem::create_directories(root.path / folder);
    std::ofstream(root.path / folder / "0.png", std::ios::binary) << png;
  }
  datasets::Dataset d = datasets::read_image_folder(root.path, 1);
  CHECK(d.label(1) == 1);
  CHECK(d.number_classes_as({"a", "b", "c"}));
  CHECK(d.label(0) == 0);
  CHECK(d.label(1) == 2);
  CHECK(d.label_names() == std::vector<std::string>{"a", "b", "c"});
  CHECK_FALSE(d.number_classes_as({"a", "b", "c"}));  // already so
  // A class the names lack: the numbering stays the data's own.
  datasets::Dataset other = datasets::read_image_folder(root.path, 1);
  CHECK_FALSE(other.number_classes_as({"a", "b"}));
  CHECK(other.label(1) == 1);
  CHECK(other.label_names() == std::vector<std::string>{"a", "c"});
  // A name given twice would put two classes on one number: nothing changes.
  CHECK_FALSE(other.number_classes_as({"c", "a", "c"}));
  CHECK(other.label(0) == 0);
  CHECK(other.label(1) == 1);
}
