// The .npy, CSV and image readers on bytes made here: round trips and bad input.
#include <doctest/doctest.h>

#include <cstring>
#include <sstream>
#include <string>

#include <xtensor/xarray.hpp>
#include <xtensor/xnpy.hpp>

#include "datasets/csv.hpp"
#include "datasets/error.hpp"
#include "datasets/image_folder.hpp"
#include "datasets/npy.hpp"

using datasets::DataError;

namespace {

template <class T>
std::string npy_of(const xt::xarray<T>& a) { return xt::dump_npy(a); }

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
  std::string fortran = good;
  fortran.replace(fortran.find("False"), 5, "True ");
  CHECK_THROWS_WITH_AS(datasets::parse_npy_dataset(fortran, "f.npy"), doctest::Contains("Fortran"), DataError);
  std::string empty_header = good.substr(0, 8) + std::string("\x01\x00\n", 3);
  CHECK_THROWS_AS(datasets::parse_npy_dataset(empty_header, "e.npy"), DataError);
  for (std::size_t cut = 0; cut < good.size(); cut += 7) CHECK_THROWS_AS(datasets::parse_npy_dataset(good.substr(0, cut), "c.npy"), DataError);
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
  CHECK_THROWS_WITH_AS(datasets::parse_csv_dataset("1,2\n3,nan\n", "n.csv"), doctest::Contains("n.csv:2: column 2: 'nan' is not a number"), DataError);
  CHECK_THROWS_WITH_AS(datasets::parse_csv_dataset("a,b\n", "h.csv"), doctest::Contains("no rows"), DataError);
  CHECK_THROWS_WITH_AS(datasets::parse_csv_dataset("0.5,1\n", "l.csv", 1), doctest::Contains("label"), DataError);
  CHECK_THROWS_AS(datasets::parse_csv_dataset("1,2\n", "c.csv", 3), DataError);
}

TEST_CASE("images: a PNG header claiming more pixels than its bytes can inflate to is refused") {
  // Signature, then an IHDR chunk for a 30000 x 2000 gray image (60 M pixels, under the 2^26
  // cap) and nothing else: 33 bytes cannot inflate to 2000 rows of at least 3751 bytes.
  std::string png("\x89PNG\r\n\x1a\n", 8);
  const unsigned char ihdr[] = {0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 0x75, 0x30, 0, 0, 0x07, 0xd0, 8, 0, 0, 0, 0};
  png.append(reinterpret_cast<const char*>(ihdr), sizeof ihdr);
  png.append("\0\0\0\0", 4);  // CRC (stb_image does not check it)
  CHECK_THROWS_WITH_AS(datasets::decode_image(png, 1, "bomb.png"), doctest::Contains("more than a 33-byte PNG can hold"),
                       DataError);
}

TEST_CASE("images: bytes that are not an image are refused") {
  CHECK_THROWS_WITH_AS(datasets::decode_image("not an image", 1, "x.png"), doctest::Contains("x.png"), DataError);
  CHECK_THROWS_AS(datasets::decode_image("", 1, "e.png"), DataError);
  CHECK_THROWS_WITH_AS(datasets::decode_image("\x89PNG\r\n\x1a\n", 2, "c.png"), doctest::Contains("channels"),
                       DataError);
}
