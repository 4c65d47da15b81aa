// Steady-state training does no heap allocation: after a warm-up, whole epochs of VAE
// training steps (including each epoch's smaller last batch) leave the allocation counter
// where it was. The counter replaces the global operator new (bench/alloc_counter.cpp), and
// arrays allocate through it too (ag::CacheAlignedAllocator).
#include <doctest/doctest.h>

#include <cmath>

#include "bench/alloc_counter.hpp"
#include "datasets/loader.hpp"
#include "datasets/synthetic.hpp"
#include "models/vae.hpp"
#include "optim/adam.hpp"
#include "distributed/communicator.hpp"
#include "tools/sharded_step.hpp"
#include "tools/vae_training.hpp"

TEST_CASE("the counter counts vectors and arrays") {
  const std::size_t before = bench::allocation_count();
  std::vector<int> v(100, 1);
  ag::Array a({4, 4});
  a.fill(static_cast<float>(v[7]));
  CHECK(bench::allocation_count() - before == 2);
  CHECK(a(3, 3) == 1.0F);
}

TEST_CASE("VAE training steps allocate nothing after the first epoch") {
  // 200 examples in batches of 32: six full batches and a last one of 8.
  const datasets::Dataset data = datasets::binary_blobs(200, 64, 4, 0.05, 1);
  ag::Rng rng(1);
  models::Vae vae({.input_dim = 64, .hidden = {32, 16}, .latent = 4}, rng);
  optim::Adam adam(vae.parameters(), {.lr = 1e-3});
  datasets::Loader loader(data, {.batch_size = 32, .binarize = true, .seed = 2});
  ag::Tape tape;
  auto epoch = [&] {
    loader.start_epoch();
    while (loader.next()) tools::train_step(tape, vae, adam, loader.batch(), rng, 1.0F);
  };
  epoch();  // warm-up: the tape, the optimizer's moments and the loader's buffers take shape
  const std::size_t before = bench::allocation_count();
  epoch();
  epoch();
  CHECK(bench::allocation_count() - before == 0);
}

TEST_CASE("conditional VAE training steps (through tools::Model) allocate nothing after the first epoch") {
  const datasets::Dataset data = datasets::binary_blobs(200, 64, 4, 0.05, 1);  // labels 0..3
  ag::Rng rng(1);
  std::unique_ptr<tools::Model> model = tools::make_model({.input_dim = 64, .hidden = {32}, .latent = 4}, 4, rng);
  optim::Adam adam(model->module().parameters(), {.lr = 1e-3});
  datasets::Loader loader(data, {.batch_size = 32, .seed = 2});
  ag::Tape tape;
  auto epoch = [&] {
    loader.start_epoch();
    while (loader.next()) tools::train_step(tape, *model, adam, loader.batch(), loader.labels(), rng, 1.0F);
  };
  epoch();
  const std::size_t before = bench::allocation_count();
  epoch();
  epoch();
  CHECK(bench::allocation_count() - before == 0);
}

TEST_CASE("conv VAE training steps allocate nothing after the first epoch") {
  // 8 x 8 images as 64 features, batches of 16 and a last one of 4: the convolutions cut that
  // one into 4 parts instead of 8, and their scratch buffers, smaller, keep their capacity.
  const datasets::Dataset data = datasets::binary_blobs(116, 64, 4, 0.05, 1);
  ag::Rng rng(1);
  models::Vae vae({.input_dim = 64, .latent = 4, .arch = models::Arch::conv, .image = {1, 8, 8}}, rng);
  optim::Adam adam(vae.parameters(), {.lr = 1e-3});
  datasets::Loader loader(data, {.batch_size = 16, .seed = 2});
  ag::Tape tape;
  auto epoch = [&] {
    loader.start_epoch();
    while (loader.next()) tools::train_step(tape, vae, adam, loader.batch(), rng, 1.0F);
  };
  epoch();
  const std::size_t before = bench::allocation_count();
  epoch();
  epoch();
  CHECK(bench::allocation_count() - before == 0);
}

TEST_CASE("data-parallel steps allocate nothing after the first epoch, blocking or overlapped") {
  // The path of a rank under mpirun (noise slices, the allreduce's packing and, overlapped,
  // the tape's parameter hook), here on a single-process communicator.
  const datasets::Dataset data = datasets::binary_blobs(200, 64, 4, 0.05, 1);
  for (bool overlap : {false, true}) {
    CAPTURE(overlap);
    ag::Rng init(1), noise(2);
    std::unique_ptr<tools::Model> model = tools::make_model({.input_dim = 64, .hidden = {32, 16}, .latent = 4}, 0, init);
    optim::Adam adam(model->module().parameters(), {.lr = 1e-3});
    datasets::Loader loader(data, {.batch_size = 32, .binarize = true, .seed = 2});
    distributed::SingleProcess one;
    tools::ShardedStep step(one, *model, overlap);
    ag::Tape tape;
    float last = 0;
    auto epoch = [&] {
      loader.start_epoch();
      while (loader.next()) last = step.run(tape, adam, loader, noise, 1.0F);
    };
    epoch();
    const std::size_t before = bench::allocation_count();
    epoch();
    epoch();
    CHECK(bench::allocation_count() - before == 0);
    CHECK(std::isfinite(last));
    CHECK(step.allreduce().calls() == 3 * loader.batches_per_epoch());
  }
}
