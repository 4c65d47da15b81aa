// Safetensors: round trips, the exact byte layout, every kind of corrupt file, lookups
// and the atomic write.
#include <doctest/doctest.h>

#include <sys/resource.h>

#include <csignal>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/safetensors.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using nn::SafetensorsError;
using nn::SafetensorsFile;
using nn::TensorEntry;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const SafetensorsError& e) {
    return e.what();
  }
  FAIL("expected a SafetensorsError");
  return "";
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A file made by hand: the length prefix, this header text, then `data` zero bytes.
std::vector<std::byte> handmade(const std::string& header, std::size_t data) {
  std::vector<std::byte> out(8 + header.size() + data, std::byte{0});
  std::uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, header.data(), header.size());
  return out;
}

void check_corrupt(const std::string& header, std::size_t data, std::initializer_list<const char*> parts) {
  std::string msg = error_of([&] { SafetensorsFile::parse(handmade(header, data), "corrupt.safetensors"); });
  INFO("header: " << header);
  INFO("message: " << msg);
  CHECK(has(msg, "corrupt.safetensors"));
  for (const char* p : parts) CHECK(has(msg, p));
}

std::vector<char> file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(in), {});
}

std::size_t temp_files_in(const fs::path& dir) {
  std::size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += has(e.path().filename().string(), ".tmp-");
  return n;
}

// A small model-like state: a weight, a bias, a scalar step and optimizer extras.
struct Sample {
  std::vector<float> weight{1.5F, -2.0F, 0.25F, 3.0F, 4.0F, -5.5F};  // [2, 3]
  std::vector<float> bias{0.1F, -0.2F};                             // [2]
  std::int64_t step = 1234567890123;
  std::vector<double> moments{1.0 / 3.0, -1e300};
  std::vector<std::uint8_t> mask{0, 1, 255};

  std::vector<TensorEntry> entries() const {
    return {{"fc.weight", {2, 3}, weight.data(), weight.size()},
            {"fc.bias", {2}, bias.data(), bias.size()},
            {"step", {}, &step, 1},
            {"moments", {2}, moments.data(), moments.size()},
            {"mask", {3}, mask.data(), mask.size()}};
  }
};

}  // namespace

TEST_CASE("tensors and metadata survive a round trip through a file") {
  TempDir dir("st");
  const fs::path path = dir.path / "model.safetensors";
  Sample s;
  nn::save_safetensors(path, s.entries(), {{"latent", "20"}, {"config", "{\"hidden\": 400}"}});

  SafetensorsFile f = SafetensorsFile::load(path);
  CHECK(f.source() == path.string());
  CHECK(f.names() == std::vector<std::string>{"fc.weight", "fc.bias", "step", "moments", "mask"});
  CHECK(f.metadata_value("latent") == "20");
  CHECK(f.metadata().at("config") == "{\"hidden\": 400}");

  nn::TensorView w = f.get("fc.weight", {2, 3});
  CHECK(w.dtype == nn::DType::F32);
  CHECK(w.to_floats() == s.weight);
  ag::Array wa = w.to_array();
  CHECK(wa.shape()[0] == 2);
  CHECK(wa.shape()[1] == 3);
  CHECK(wa(1, 2) == -5.5F);
  ag::Array ba = f.get("fc.bias", {2}).to_array();  // a rank-1 tensor becomes a row
  CHECK(ba.shape()[0] == 1);
  CHECK(ba.shape()[1] == 2);
  CHECK(ba(0, 1) == -0.2F);

  nn::TensorView step = f.get("step", {});
  CHECK(step.dtype == nn::DType::I64);
  std::int64_t stored = 0;
  std::memcpy(&stored, step.bytes.data(), 8);
  CHECK(stored == s.step);
  CHECK(step.to_array().shape()[0] == 1);
  CHECK(f.get("moments").dtype == nn::DType::F64);
  CHECK(f.get("moments").to_floats() == std::vector<float>{1.0F / 3.0F, -INFINITY});
  CHECK(f.get("mask").to_floats() == std::vector<float>{0, 1, 255});

  // An empty file round-trips too.
  nn::save_safetensors(path, std::vector<TensorEntry>{});
  CHECK(SafetensorsFile::load(path).names().empty());
}

TEST_CASE("a tensor of any rank becomes an Array of its shape") {
  TempDir dir("st_rank");
  const fs::path path = dir.path / "conv.safetensors";
  std::vector<float> kernel(2 * 1 * 3 * 4);  // [out, in, kh, kw], as a conv layer holds it
  for (std::size_t i = 0; i < kernel.size(); ++i) kernel[i] = static_cast<float>(i) - 5.0F;
  nn::save_safetensors(path, std::vector<TensorEntry>{{"conv.weight", {2, 1, 3, 4}, kernel.data(), kernel.size()}});
  const ag::Array a = SafetensorsFile::load(path).get("conv.weight", {2, 1, 3, 4}).to_array();
  CHECK(a.shape() == ag::Shape{2, 1, 3, 4});
  CHECK(a(1, 0, 2, 3) == kernel[12 + 2 * 4 + 3]);
  CHECK(a(0, 0, 1, 0) == -1.0F);
}

TEST_CASE("the bytes follow the specification") {
  std::vector<float> v{1.0F, 2.0F};
  std::vector<TensorEntry> e{{"a", {2}, v.data(), 2}, {"b", {1, 1}, v.data(), 1}};
  std::vector<std::byte> bytes = nn::serialize_safetensors(e, {{"k", "v"}});
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  CHECK((8 + n) % 8 == 0);  // the data section starts 8-byte aligned
  CHECK(bytes.size() == 8 + n + 12);
  std::string header(reinterpret_cast<const char*>(bytes.data()) + 8, n);
  auto j = nlohmann::json::parse(header);
  CHECK(j["__metadata__"]["k"] == "v");
  CHECK(j["a"]["dtype"] == "F32");
  CHECK(j["a"]["shape"] == nlohmann::json::array({2}));
  CHECK(j["a"]["data_offsets"] == nlohmann::json::array({0, 8}));
  CHECK(j["b"]["data_offsets"] == nlohmann::json::array({8, 12}));
  float first = 0;
  std::memcpy(&first, bytes.data() + 8 + n, 4);
  CHECK(first == 1.0F);
}

TEST_CASE("corrupt files are rejected with the file name and the problem") {
  std::string msg = error_of([] { SafetensorsFile::parse(std::vector<std::byte>(5), "corrupt.safetensors"); });
  CHECK(has(msg, "corrupt.safetensors"));
  CHECK(has(msg, "at least 8 bytes"));
  CHECK(has(msg, "found 5"));

  std::vector<std::byte> beyond = handmade("{}", 0);
  beyond[0] = std::byte{100};
  msg = error_of([&] { SafetensorsFile::parse(beyond, "corrupt.safetensors"); });
  CHECK(has(msg, "header length 100"));
  CHECK(has(msg, "runs past the end of the file"));

  check_corrupt("{\"a\": {\"dtype\": \"F32\",", 0, {"not valid JSON"});
  check_corrupt("[1, 2]", 0, {"header is a JSON array, expected an object"});
  check_corrupt(R"({"a": 3})", 0, {"tensor \"a\"", "expected an object"});
  check_corrupt(R"({"a": {"shape": [1], "data_offsets": [0, 4]}})", 4, {"\"dtype\""});
  check_corrupt(R"({"a": {"dtype": "F33", "shape": [1], "data_offsets": [0, 4]}})", 4, {"unknown dtype \"F33\""});
  check_corrupt(R"({"a": {"dtype": "F32", "shape": 1, "data_offsets": [0, 4]}})", 4, {"\"shape\": an array"});
  check_corrupt(R"({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 4, {"not a non-negative integer"});
  check_corrupt(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})", 4, {"two integers"});
  check_corrupt(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}})", 4, {"end before they begin"});
  check_corrupt(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", 4,
                {"data_offsets [0, 8] go past the end of the data section (4 bytes"});
  check_corrupt(R"({"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 8]}})", 8,
                {"shape [2, 3] of F32 needs 24 bytes", "hold 8"});
  check_corrupt(R"({"a": {"dtype": "F64", "shape": [1], "data_offsets": [0, 4]}})", 4, {"needs 8 bytes"});
  check_corrupt(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                    "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})", 8, {"overlaps"});
  check_corrupt(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                    "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}})", 12, {"gap", "[4, 8)"});
  check_corrupt(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})", 6,
                {"data section has 6 bytes but its tensors cover 4"});
  check_corrupt(R"({"__metadata__": {"k": 1}})", 0, {"__metadata__ value of \"k\"", "expected a string"});

  // From a file, the path is named.
  TempDir dir("st");
  const fs::path path = dir.path / "bad.safetensors";
  std::ofstream(path) << "short";
  msg = error_of([&] { SafetensorsFile::load(path); });
  CHECK(has(msg, path.string()));
  CHECK(has(msg, "at least 8 bytes"));
  msg = error_of([&] { SafetensorsFile::load(dir.path / "none.safetensors"); });
  CHECK(has(msg, "none.safetensors: file not found"));
}

TEST_CASE("deeply nested JSON in a header is refused without recursion, and messages stay short") {
  // 300000 levels is a 600 KB header: a recursive dump of it overflows an 8 MB stack.
  const std::size_t deep = 300000;
  const std::string nest = std::string(deep, '[') + std::string(deep, ']');
  const std::string nest_objects = [&] {
    std::string s;
    for (std::size_t i = 0; i < deep; ++i) s += "{\"k\":";
    return s + "1" + std::string(deep, '}');
  }();
  for (const std::string& header :
       {nest, nest_objects,
        R"({"a": {"dtype": "F32", "shape": )" + nest + R"(, "data_offsets": [0, 4]}})",
        R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [)" + nest + R"(, 4]}})",
        R"({"__metadata__": {"k": )" + nest_objects + "}}"}) {
    std::string msg = error_of([&] { SafetensorsFile::parse(handmade(header, 4), "deep.safetensors"); });
    INFO("message: " << msg.substr(0, 300));
    CHECK(has(msg, "deep.safetensors"));
    CHECK(has(msg, "nests JSON"));
    CHECK(has(msg, "levels deep"));
    CHECK(msg.size() < 300);
  }
  // Within the depth limit, a nested shape is named by one level only.
  const std::string shape = R"([1, [[[[2]]]], 3, 4, 5, 6, 7, 8, 9, 10])";
  check_corrupt(R"({"a": {"dtype": "F32", "shape": )" + shape + R"(, "data_offsets": [0, 4]}})", 4,
                {"shape [1, <array>, 3, 4, 5, 6, 7, 8, ... (10 items)]", "not a non-negative integer"});
  // A huge name is cut short in the message.
  const std::string name(100000, 'x');
  std::string msg = error_of([&] {
    SafetensorsFile::parse(handmade("{\"" + name + R"(": {"dtype": "F33", "shape": [1], "data_offsets": [0, 4]}})", 4),
                           "long.safetensors");
  });
  CHECK(has(msg, "(100000 bytes)"));
  CHECK(has(msg, "unknown dtype \"F33\""));
  CHECK(msg.size() < 300);
}

TEST_CASE("lookups name the missing tensor or both shapes") {
  Sample s;
  SafetensorsFile f = SafetensorsFile::parse(nn::serialize_safetensors(s.entries()), "ckpt.safetensors");
  CHECK(f.contains("fc.bias"));
  CHECK_FALSE(f.contains("fc2.bias"));
  std::string msg = error_of([&] { f.get("fc2.bias"); });
  CHECK(has(msg, "missing tensor \"fc2.bias\" in ckpt.safetensors"));
  CHECK(has(msg, "fc.weight"));  // lists what it has
  msg = error_of([&] { f.get("fc.weight", {3, 2}); });
  CHECK(has(msg, "tensor \"fc.weight\" in ckpt.safetensors has shape [2, 3], expected [3, 2]"));
  msg = error_of([&] { f.metadata_value("latent"); });
  CHECK(has(msg, "missing metadata key \"latent\" in ckpt.safetensors"));
  std::vector<float> out(5);
  CHECK_THROWS_AS(f.get("fc.weight").copy_to(out), SafetensorsError);
}

TEST_CASE("the writer rejects entries that do not describe their data") {
  std::vector<float> v(6);
  CHECK(has(error_of([&] { nn::serialize_safetensors(std::vector<TensorEntry>{{"a", {2, 2}, v.data(), 6}}); }),
            "shape [2, 2] but 6 elements"));
  CHECK(has(error_of([&] {
              nn::serialize_safetensors(std::vector<TensorEntry>{{"a", {6}, v.data(), 6}, {"a", {6}, v.data(), 6}});
            }),
            "given twice"));
  CHECK(has(error_of([&] { nn::serialize_safetensors(std::vector<TensorEntry>{{"", {6}, v.data(), 6}}); }),
            "invalid tensor name"));
}

TEST_CASE("half and bfloat16 tensors convert to float") {
  // F16: 1.0 = 0x3c00, -2.5 = 0xc100, the smallest subnormal 2^-24 = 0x0001, 65504 = 0x7bff.
  std::vector<std::uint16_t> half{0x3c00, 0xc100, 0x0001, 0x7bff};
  // BF16 is the top half of a float: 1.5 = 0x3fc0.
  std::vector<std::uint16_t> bf{0x3fc0};
  std::string header = R"({"h": {"dtype": "F16", "shape": [4], "data_offsets": [0, 8]},
                          "b": {"dtype": "BF16", "shape": [1], "data_offsets": [8, 10]}})";
  std::vector<std::byte> bytes = handmade(header, 10);
  std::memcpy(bytes.data() + 8 + header.size(), half.data(), 8);
  std::memcpy(bytes.data() + 8 + header.size() + 8, bf.data(), 2);
  SafetensorsFile f = SafetensorsFile::parse(bytes, "half");
  CHECK(f.get("h").to_floats() == std::vector<float>{1.0F, -2.5F, 0x1p-24F, 65504.0F});
  CHECK(f.get("b").to_floats() == std::vector<float>{1.5F});
}

TEST_CASE("a failed write leaves the previous file intact and no temporary file") {
  TempDir dir("st");
  const fs::path path = dir.path / "model.safetensors";
  Sample s;
  nn::save_safetensors(path, s.entries(), {{"version", "old"}});
  const std::vector<char> old = file_bytes(path);

  SUBCASE("a folder that does not exist") {
    std::string msg = error_of([&] { nn::save_safetensors(dir.path / "no" / "x.safetensors", s.entries()); });
    CHECK(has(msg, "cannot create temporary file"));
    CHECK_FALSE(fs::exists(dir.path / "no"));
  }
  SUBCASE("the disk fills up mid-write") {
    // A file-size limit makes write() fail with EFBIG part-way through the temporary file.
    std::vector<float> big(1 << 20, 1.0F);
    rlimit saved{};
    REQUIRE(getrlimit(RLIMIT_FSIZE, &saved) == 0);
    auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit small = saved;
    small.rlim_cur = 64 * 1024;
    REQUIRE(setrlimit(RLIMIT_FSIZE, &small) == 0);
    std::string msg = error_of([&] {
      nn::save_safetensors(path, std::vector<TensorEntry>{{"big", {big.size()}, big.data(), big.size()}});
    });
    setrlimit(RLIMIT_FSIZE, &saved);
    std::signal(SIGXFSZ, old_handler);
    CHECK(has(msg, path.string()));
    CHECK(has(msg, "write failed"));
    CHECK(has(msg, "previous file, if any, is unchanged"));
  }
  SUBCASE("the rename fails: the target is a folder") {
    const fs::path folder = dir.path / "folder.safetensors";
    fs::create_directory(folder);
    std::string msg = error_of([&] { nn::save_safetensors(folder, s.entries()); });
    CHECK(has(msg, "cannot rename"));
    CHECK(fs::is_directory(folder));
  }
  SUBCASE("bad entries are caught before the disk is touched") {
    std::vector<float> v(3);
    CHECK_THROWS_AS(nn::save_safetensors(path, std::vector<TensorEntry>{{"w", {2}, v.data(), 3}}), SafetensorsError);
  }

  CHECK(file_bytes(path) == old);
  CHECK(SafetensorsFile::load(path).metadata_value("version") == "old");
  CHECK(temp_files_in(dir.path) == 0);

  // And a write that works replaces the file.
  nn::save_safetensors(path, s.entries(), {{"version", "new"}});
  CHECK(SafetensorsFile::load(path).metadata_value("version") == "new");
  CHECK(temp_files_in(dir.path) == 0);
}
