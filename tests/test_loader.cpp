// The batch loader, the train/validation split and the synthetic datasets.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <new>
#include <numeric>
#include <set>
#include <vector>

#include "datasets/dataset.hpp"
#include "datasets/loader.hpp"
#include "datasets/synthetic.hpp"
#include "temp_dir.hpp"

// Counts every operator new in this test program, to show that batches do not allocate.
// Not inlined: g++ would otherwise see malloc'd memory reach operator delete and warn.
namespace {
std::atomic<long> g_news{0};
}
[[gnu::noinline]] void* operator new(std::size_t n) {
  ++g_news;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }

using datasets::Dataset;
using datasets::Loader;

namespace {

// Rows of one epoch, in the order the loader gave them.
std::vector<std::size_t> epoch_order(Loader& loader) {
  std::vector<std::size_t> order;
  loader.start_epoch();
  while (loader.next()) order.insert(order.end(), loader.indices().begin(), loader.indices().end());
  return order;
}

// Every value of every batch of one epoch.
std::vector<float> epoch_values(Loader& loader) {
  std::vector<float> values;
  loader.start_epoch();
  while (loader.next()) values.insert(values.end(), loader.batch().begin(), loader.batch().end());
  return values;
}

std::vector<std::size_t> iota(std::size_t n) {
  std::vector<std::size_t> v(n);
  std::iota(v.begin(), v.end(), std::size_t{0});
  return v;
}

}  // namespace

TEST_CASE("an epoch has full batches and one partial batch, each example exactly once") {
  Dataset data = datasets::binary_blobs(1000, 64, 4, 0.1, 3);
  Loader loader(data, {.batch_size = 128, .seed = 5});
  CHECK(loader.size() == 1000);
  CHECK(loader.batches_per_epoch() == 8);  // 7 x 128 + 104

  loader.start_epoch();
  std::vector<std::size_t> seen;
  std::size_t batches = 0;
  while (loader.next()) {
    const ag::Array& x = loader.batch();
    std::size_t rows = batches < 7 ? 128 : 104;
    CHECK(x.shape()[0] == rows);
    CHECK(x.shape()[1] == 64);
    REQUIRE(loader.indices().size() == rows);
    REQUIRE(loader.labels().size() == rows);
    std::size_t wrong = 0;  // counted, not checked one by one: 64 000 CHECKs are slow
    for (std::size_t k = 0; k < rows; ++k) {
      std::size_t i = loader.indices()[k];
      wrong += loader.labels()[k] != data.label(i);
      for (std::size_t j = 0; j < 64; ++j) wrong += x(k, j) != data.bytes()[i * 64 + j] / 255.0F;
    }
    CHECK(wrong == 0);
    seen.insert(seen.end(), loader.indices().begin(), loader.indices().end());
    ++batches;
  }
  CHECK(batches == 8);
  CHECK_FALSE(loader.next());  // stays done until the next epoch
  std::sort(seen.begin(), seen.end());
  CHECK(seen == iota(1000));
  CHECK_THROWS_AS(Loader(data, {.batch_size = 0}), std::invalid_argument);
  Loader fresh(data, {});
  CHECK_THROWS_AS(fresh.next(), std::logic_error);
}

TEST_CASE("every gray value becomes the correctly rounded p / 255") {
  // Rows of 259 values (not a whole number of vectors, so the vectorized conversion's tail runs
  // too): every gray value, then the first three again; the second row reversed. The reference
  // divides in double and rounds once to float.
  constexpr std::size_t d = 259;
  std::vector<std::uint8_t> pixels(2 * d);
  for (std::size_t j = 0; j < d; ++j) {
    pixels[j] = static_cast<std::uint8_t>(j % 256);
    pixels[d + j] = static_cast<std::uint8_t>(255 - j % 256);
  }
  Dataset data(pixels, d);
  std::vector<float> row(d);
  std::size_t wrong = 0;
  for (std::size_t r = 0; r < 2; ++r) {
    data.row_to_floats(r, row.data());
    for (std::size_t j = 0; j < d; ++j)
      wrong += row[j] != static_cast<float>(static_cast<double>(pixels[r * d + j]) / 255.0);
  }
  CHECK(wrong == 0);
  CHECK(row[0] == 1.0F);
  CHECK(row[255] == 0.0F);
}

TEST_CASE("the order changes every epoch and repeats for the same seed") {
  Dataset data = datasets::binary_blobs(300, 4, 2, 0.1, 1);
  Loader a(data, {.batch_size = 32, .seed = 9});
  Loader b(data, {.batch_size = 32, .seed = 9});
  Loader c(data, {.batch_size = 32, .seed = 10});
  auto a1 = epoch_order(a);
  auto a2 = epoch_order(a);
  CHECK(a1 != a2);
  CHECK(a1 != iota(300));
  CHECK(epoch_order(b) == a1);
  CHECK(epoch_order(b) == a2);
  CHECK(epoch_order(c) != a1);
  std::sort(a2.begin(), a2.end());
  CHECK(a2 == iota(300));

  Loader in_order(data, {.batch_size = 32, .shuffle = false});
  CHECK(epoch_order(in_order) == iota(300));
  CHECK(epoch_order(in_order) == iota(300));
}

TEST_CASE("dynamic binarization gives 0 or 1 with probability p / 255, fresh each epoch") {
  const std::size_t n = 2000;
  const std::size_t d = 64;
  std::vector<std::uint8_t> pixels(n * d, 77);
  for (std::size_t j = 0; j < d; ++j) {  // one row of extremes: always 0, always 1
    pixels[j] = j % 2 == 0 ? 0 : 255;
  }
  Dataset data(pixels, d);
  Loader loader(data, {.batch_size = 100, .shuffle = false, .binarize = true, .seed = 4});
  std::vector<float> v = epoch_values(loader);
  REQUIRE(v.size() == n * d);
  double sum = 0;
  std::size_t not_binary = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    not_binary += v[i] != 0.0F && v[i] != 1.0F;
    if (i >= d) sum += v[i];
  }
  CHECK(not_binary == 0);
  for (std::size_t j = 0; j < d; ++j) CHECK(v[j] == (j % 2 == 0 ? 0.0F : 1.0F));
  // 126 976 draws with p = 77/255 = 0.302: the standard error of the mean is 0.0013.
  CHECK(sum / static_cast<double>(v.size() - d) == doctest::Approx(77.0 / 255.0).epsilon(0.02));
  CHECK(epoch_values(loader) != v);

  Dataset floats = datasets::gaussian_blobs(10, 3, 2, 1);
  CHECK_THROWS_AS(Loader(floats, {.binarize = true}), std::invalid_argument);
}

TEST_CASE("a saved loader state resumes exactly, between epochs and mid-epoch") {
  Dataset data = datasets::binary_blobs(250, 16, 3, 0.2, 8);
  const datasets::LoaderOptions options{.batch_size = 32, .binarize = true, .seed = 21};
  Loader a(data, options);
  epoch_values(a);
  const std::string between = a.state();
  const std::vector<float> second = epoch_values(a);
  const std::vector<std::size_t> third_order = epoch_order(a);

  Loader b(data, options);
  b.set_state(between);
  CHECK(b.epoch() == 1);
  CHECK(epoch_values(b) == second);
  CHECK(epoch_order(b) == third_order);

  // Mid-epoch: stop after 3 batches of epoch 2, resume in a fresh loader.
  Loader c(data, options);
  c.set_state(between);
  c.start_epoch();
  for (int k = 0; k < 3; ++k) REQUIRE(c.next());
  const std::string mid = c.state();
  std::vector<float> rest;
  while (c.next()) rest.insert(rest.end(), c.batch().begin(), c.batch().end());

  Loader d(data, options);
  d.set_state(mid);
  CHECK(d.epoch() == 2);
  CHECK(d.position() == 3);
  std::vector<float> resumed;
  while (d.next()) resumed.insert(resumed.end(), d.batch().begin(), d.batch().end());
  CHECK(resumed == rest);
  CHECK(std::equal(rest.begin(), rest.end(), second.end() - static_cast<std::ptrdiff_t>(rest.size())));
  CHECK(epoch_order(d) == third_order);

  // A state taken before any epoch is the seed itself.
  Loader e(data, options);
  Loader f(data, options);
  f.set_state(e.state());
  CHECK(epoch_values(f) == epoch_values(e));

  CHECK_THROWS_AS(d.set_state("not a state"), std::invalid_argument);
}

TEST_CASE("after the first batches, an epoch does not allocate") {
  Dataset data = datasets::binary_blobs(1000, 64, 4, 0.1, 3);
  Loader loader(data, {.batch_size = 128, .binarize = true, .seed = 2});
  loader.start_epoch();
  const float* full = nullptr;
  const float* tail = nullptr;
  while (loader.next()) (loader.batch().shape()[0] == 128 ? full : tail) = loader.batch().data();

  const long before = g_news.load();
  bool same_buffers = true;
  for (int epoch = 0; epoch < 3; ++epoch) {
    loader.start_epoch();
    while (loader.next()) {
      const float* p = loader.batch().data();
      same_buffers = same_buffers && (p == full || p == tail);
    }
  }
  CHECK(g_news.load() == before);
  CHECK(same_buffers);
}

TEST_CASE("a loader over a row subset visits exactly those rows") {
  Dataset data = datasets::gaussian_blobs(50, 3, 2, 4);
  std::vector<std::size_t> rows{4, 9, 13, 20, 21, 33, 49};
  Loader loader(data, rows, {.batch_size = 3, .seed = 1});
  CHECK(loader.batches_per_epoch() == 3);
  loader.start_epoch();
  std::vector<std::size_t> seen;
  while (loader.next()) {
    for (std::size_t k = 0; k < loader.indices().size(); ++k) {
      std::size_t i = loader.indices()[k];
      for (std::size_t j = 0; j < 3; ++j) CHECK(loader.batch()(k, j) == data.floats()[i * 3 + j]);
    }
    seen.insert(seen.end(), loader.indices().begin(), loader.indices().end());
  }
  std::sort(seen.begin(), seen.end());
  CHECK(seen == rows);
  CHECK_THROWS_AS(Loader(data, std::vector<std::size_t>{50}, {}), std::out_of_range);

  Loader none(data, std::vector<std::size_t>{}, {});
  CHECK(none.batches_per_epoch() == 0);
  none.start_epoch();
  CHECK_FALSE(none.next());
}

TEST_CASE("the train/validation split is a deterministic partition") {
  datasets::Split s = datasets::split_indices(1000, 100, 7);
  CHECK(s.train.size() == 900);
  CHECK(s.validation.size() == 100);
  std::vector<std::size_t> all = s.train;
  all.insert(all.end(), s.validation.begin(), s.validation.end());
  std::sort(all.begin(), all.end());
  CHECK(all == iota(1000));
  CHECK(std::is_sorted(s.validation.begin(), s.validation.end()));
  CHECK(datasets::split_indices(1000, 100, 7).validation == s.validation);
  CHECK(datasets::split_indices(1000, 100, 8).validation != s.validation);
  CHECK(s.validation != iota(100));  // a shuffle, not the first rows
  CHECK_THROWS_AS(datasets::split_indices(10, 11, 0), std::invalid_argument);
}

TEST_CASE("subset and truncate copy and cut rows with their labels") {
  Dataset data = datasets::binary_blobs(20, 5, 3, 0.1, 2);
  std::vector<std::size_t> rows{7, 2, 19};
  Dataset sub = data.subset(rows);
  CHECK(sub.size() == 3);
  for (std::size_t k = 0; k < 3; ++k) {
    CHECK(sub.label(k) == data.label(rows[k]));
    for (std::size_t j = 0; j < 5; ++j) CHECK(sub.bytes()[k * 5 + j] == data.bytes()[rows[k] * 5 + j]);
  }
  data.truncate(4);
  CHECK(data.size() == 4);
  CHECK(data.bytes().size() == 20);
  CHECK(data.labels().size() == 4);
  data.truncate(100);
  CHECK(data.size() == 4);
}

TEST_CASE("synthetic sets: binary blobs, Gaussian blobs, manifold vectors") {
  Dataset blobs = datasets::binary_blobs(400, 32, 4, 0.05, 1);
  CHECK(blobs.holds_bytes());
  std::set<std::int32_t> labels(blobs.labels().begin(), blobs.labels().end());
  CHECK(labels == std::set<std::int32_t>{0, 1, 2, 3});
  CHECK(std::all_of(blobs.bytes().begin(), blobs.bytes().end(), [](std::uint8_t p) { return p == 0 || p == 255; }));

  Dataset g = datasets::gaussian_blobs(100, 5, 3, 1);
  CHECK_FALSE(g.holds_bytes());
  CHECK(g.features() == 5);

  datasets::ManifoldSpec spec;
  Dataset m = datasets::manifold_vectors(500, spec, 2);
  CHECK(m.size() == 500);
  CHECK(m.features() == 100);
  CHECK_FALSE(m.has_labels());
  double mean = 0;
  float largest = 0;
  for (float v : m.floats()) {
    largest = std::max(largest, std::abs(v));
    mean += v;
  }
  CHECK(largest < 1.0F + 6 * spec.noise);  // tanh plus small noise
  CHECK(std::abs(mean / 50000) < 0.5);
  Dataset again = datasets::manifold_vectors(500, spec, 2);
  CHECK(std::equal(m.floats().begin(), m.floats().end(), again.floats().begin()));

  TempDir dir("manifold");
  datasets::write_manifold_idx(dir.path, 300, 50, spec);
  Dataset train = datasets::load_idx_dataset(dir.path, "train");
  Dataset test = datasets::load_idx_dataset(dir.path, "t10k");
  CHECK(train.size() == 300);
  CHECK(test.size() == 50);
  CHECK(train.features() == 100);
  Dataset expected = datasets::manifold_vectors(300, spec, spec.seed + 1);
  CHECK(std::equal(train.floats().begin(), train.floats().end(), expected.floats().begin()));
}
