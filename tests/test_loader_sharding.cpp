// Loader sharding for data-parallel training: N ranks' slices of every global batch are,
// put together in rank order, exactly the one-process batch (rows, values, binarization
// draws), for full batches and for the last partial one, and the state is the same on every rank.
#include <doctest/doctest.h>

#include <cstdint>
#include <stdexcept>
#include <vector>

#include "datasets/dataset.hpp"
#include "datasets/loader.hpp"

using datasets::Dataset;
using datasets::Loader;

namespace {

// 103 rows of 5 pixels: batches of 16 leave a last batch of 7 rows.
Dataset pixels() {
  std::vector<std::uint8_t> bytes(103 * 5);
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>((i * 37) % 256);
  return Dataset(std::move(bytes), 5);
}

struct Epoch {
  std::vector<std::vector<float>> values;         // per global batch
  std::vector<std::vector<std::size_t>> rows;     // per global batch
  std::vector<std::size_t> global_rows;           // per global batch
};

// One epoch as `ranks` ranks see it, their slices joined in rank order.
Epoch joined_epoch(const Dataset& data, std::size_t ranks, datasets::LoaderOptions options) {
  Epoch e;
  std::vector<Loader> loaders;
  for (std::size_t r = 0; r < ranks; ++r) {
    options.rank = r;
    options.ranks = ranks;
    loaders.emplace_back(data, options);
    loaders.back().start_epoch();
  }
  for (;;) {
    std::vector<float> values;
    std::vector<std::size_t> rows;
    std::size_t global = 0;
    bool any = false;
    for (std::size_t r = 0; r < ranks; ++r) {
      Loader& l = loaders[r];
      if (!l.next()) continue;
      any = true;
      CHECK(l.shard_begin() == rows.size());  // slices are contiguous, in rank order
      values.insert(values.end(), l.batch().begin(), l.batch().end());
      rows.insert(rows.end(), l.indices().begin(), l.indices().end());
      global = l.global_rows();
    }
    if (!any) break;
    e.values.push_back(values);
    e.rows.push_back(rows);
    e.global_rows.push_back(global);
  }
  for (std::size_t r = 1; r < ranks; ++r) CHECK(loaders[r].state() == loaders[0].state());
  return e;
}

}  // namespace

TEST_CASE("N ranks' slices of every global batch are the one-process batch, binarization included") {
  const Dataset data = pixels();
  const datasets::LoaderOptions options{.batch_size = 16, .shuffle = true, .binarize = true, .seed = 7};
  const Epoch one = joined_epoch(data, 1, options);
  REQUIRE(one.rows.size() == 7);  // 6 full batches and one of 7 rows
  CHECK(one.rows.back().size() == 7);
  for (std::size_t ranks : {2, 3, 4, 8}) {
    CAPTURE(ranks);
    const Epoch many = joined_epoch(data, ranks, options);
    CHECK(many.rows == one.rows);
    CHECK(many.values == one.values);
    CHECK(many.global_rows == one.global_rows);
  }
}

TEST_CASE("slices differ by at most one row; a last batch smaller than the ranks leaves some ranks empty") {
  const Dataset data = pixels();
  std::vector<Loader> loaders;
  for (std::size_t r = 0; r < 8; ++r) loaders.emplace_back(data, datasets::LoaderOptions{.batch_size = 16, .seed = 1,
                                                                                          .rank = r, .ranks = 8});
  for (Loader& l : loaders) l.start_epoch();
  for (std::size_t b = 0; b < 7; ++b) {
    std::size_t total = 0, empty = 0;
    for (Loader& l : loaders) {
      REQUIRE(l.next());
      const std::size_t rows = l.batch().shape()[0];
      CHECK(rows == l.indices().size());
      total += rows;
      if (rows == 0) ++empty;
      CHECK(rows <= (l.global_rows() + 7) / 8);
      CHECK(rows + 1 >= l.global_rows() / 8);
    }
    CHECK(total == (b < 6 ? 16 : 7));
    CHECK(empty == (b < 6 ? 0 : 1));  // 7 rows over 8 ranks
  }
  for (Loader& l : loaders) CHECK_FALSE(l.next());
}

TEST_CASE("a loader state saved by one rank resumes on a loader of another rank count") {
  const Dataset data = pixels();
  Loader one(data, {.batch_size = 16, .binarize = true, .seed = 3});
  one.start_epoch();
  one.next();
  one.next();
  Loader shard(data, {.batch_size = 16, .binarize = true, .seed = 3, .rank = 1, .ranks = 2});
  shard.set_state(one.state());
  REQUIRE(one.next());
  REQUIRE(shard.next());
  CHECK(shard.shard_begin() == 8);
  const std::vector<float> whole(one.batch().begin(), one.batch().end());
  const std::vector<float> second_half(shard.batch().begin(), shard.batch().end());
  CHECK(second_half == std::vector<float>(whole.begin() + 8 * 5, whole.end()));
}

TEST_CASE("a rank outside the ranks is refused") {
  const Dataset data = pixels();
  CHECK_THROWS_AS(Loader(data, {.rank = 2, .ranks = 2}), std::invalid_argument);
  CHECK_THROWS_AS(Loader(data, {.rank = 0, .ranks = 0}), std::invalid_argument);
}
