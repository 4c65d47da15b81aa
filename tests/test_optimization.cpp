// What `vae train` does around the optimizer: --lr-schedule / --lr-warmup (the learning rate at
// each step), --weight-decay (AdamW) and --clip-grad, on the single-process and the
// data-parallel step alike; and which epoch is the best for --keep-best and --patience.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "datasets/loader.hpp"
#include "datasets/synthetic.hpp"
#include "distributed/communicator.hpp"
#include "optim/sgd.hpp"
#include "tools/best_epoch.hpp"
#include "tools/model.hpp"
#include "tools/optimization.hpp"
#include "tools/sharded_step.hpp"
#include "tools/vae_training.hpp"

namespace {

// Every parameter's values, one after another.
std::vector<float> flat_values(const std::vector<ag::Parameter*>& params) {
  std::vector<float> out;
  for (const ag::Parameter* p : params) out.insert(out.end(), p->value.begin(), p->value.end());
  return out;
}

double distance(const std::vector<float>& a, const std::vector<float>& b) {
  double sum = 0;
  for (std::size_t i = 0; i < a.size(); ++i) sum += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
  return std::sqrt(sum);
}

}  // namespace

TEST_CASE("the learning rate of each step: constant, warm-up, cosine") {
  tools::TrainOptions o;
  o.lr = 0.01;
  o.epochs = 4;
  const std::size_t per_epoch = 10;  // 40 steps in all
  CHECK(tools::make_schedule(o, per_epoch)->lr(0) == 0.01);
  CHECK(tools::make_schedule(o, per_epoch)->lr(39) == 0.01);

  o.lr_warmup = 0.5;  // 5 steps: 0.002, 0.004, ..., 0.01
  auto warm = tools::make_schedule(o, per_epoch);
  CHECK(warm->lr(0) == doctest::Approx(0.002));
  CHECK(warm->lr(4) == doctest::Approx(0.01));
  CHECK(warm->lr(39) == 0.01);

  o.lr_schedule = tools::LrSchedule::cosine;  // after the ramp, 35 steps of half a cosine
  auto cosine = tools::make_schedule(o, per_epoch);
  CHECK(cosine->lr(4) == doctest::Approx(0.01));
  CHECK(cosine->lr(5) == doctest::Approx(0.01));  // the cosine's first step is its peak
  CHECK(cosine->lr(5 + 17) == doctest::Approx(0.005 * (1 + std::cos(M_PI * 17 / 35))));
  CHECK(cosine->lr(39) == doctest::Approx(0.005 * (1 + std::cos(M_PI * 34 / 35))));
  for (std::size_t t = 5; t < 39; ++t) CHECK(cosine->lr(t + 1) < cosine->lr(t));

  o.lr_warmup = 0;
  CHECK(tools::make_schedule(o, per_epoch)->lr(0) == 0.01);
  CHECK(tools::make_schedule(o, per_epoch)->lr(20) == doctest::Approx(0.005));
}

TEST_CASE("--weight-decay makes the optimizer AdamW: with a zero gradient a weight shrinks by lr * decay") {
  ag::Parameter w(ag::Array{3.0F, 3.0F});  // its gradient stays zero
  tools::TrainOptions o;
  o.lr = 0.1;
  CHECK(tools::make_optimizer({&w}, o)->lr() == 0.1);
  auto adam = tools::make_optimizer({&w}, o);
  adam->step();
  CHECK(w.value(0) == 3.0F);  // Adam without decay: a zero gradient moves nothing
  o.weight_decay = 0.5;
  auto adamw = tools::make_optimizer({&w}, o);
  CHECK(dynamic_cast<optim::AdamW*>(adamw.get()) != nullptr);
  adamw->step();
  CHECK(w.value(0) == doctest::Approx(3.0 * (1 - 0.1 * 0.5)));
  CHECK(tools::describe_optimization(o) == "AdamW lr 0.1 (weight decay 0.5)");
}

TEST_CASE("--clip-grad: the step's gradient has at most that global norm, single-process and data-parallel") {
  // SGD with lr 1 moves the weights by exactly the (clipped) gradient.
  const datasets::Dataset data = datasets::binary_blobs(64, 16, 2, 0.05, 1);
  datasets::Loader loader(data, {.batch_size = 64, .seed = 2});
  for (const double clip : {0.0, 0.05}) {
    for (const bool sharded : {false, true}) {
      CAPTURE(clip);
      CAPTURE(sharded);
      ag::Rng init(1), noise(2);
      std::unique_ptr<tools::Model> model = tools::make_model({.input_dim = 16, .hidden = {8}, .latent = 2}, 0, init);
      optim::SGD sgd(model->module().parameters(), {.lr = 1.0});
      const std::vector<float> before = flat_values(model->module().parameters());
      loader.start_epoch();
      REQUIRE(loader.next());
      ag::Tape tape;
      distributed::SingleProcess one;
      tools::ShardedStep step(one, *model, /*overlap=*/false, clip);
      if (sharded) step.run(tape, sgd, loader, noise, 1.0F);
      else tools::train_step(tape, *model, sgd, loader.batch(), loader.labels(), noise, 1.0F, clip);
      const double moved = distance(before, flat_values(model->module().parameters()));
      if (clip > 0) CHECK(moved == doctest::Approx(clip).epsilon(1e-4));
      else CHECK(moved > 0.5);  // unclipped, this first gradient is far larger than the clip
    }
  }
}

TEST_CASE("the best epoch and --patience: strictly lower losses count, a resumed run replays its metrics") {
  const std::vector<double> losses = {5, 4, 4.5, 4, 3, 3.1, 3.2, 2};
  tools::BestEpoch best(2);
  std::vector<bool> better, stop;
  for (std::size_t e = 1; e <= losses.size(); ++e) {
    better.push_back(best.record(e, losses[e - 1]));
    stop.push_back(best.patience_ran_out(e));
  }
  CHECK(better == std::vector<bool>{true, true, false, false, true, false, false, true});  // a tie is no better
  CHECK(stop == std::vector<bool>{false, false, false, true, false, false, true, false});  // 2 epochs after epoch 2, 5
  CHECK(best.epoch() == 8);
  CHECK(best.loss() == 2);
  CHECK_FALSE(best.record(9, std::nan("")));

  tools::BestEpoch resumed(2);
  resumed.restore({{1, 0, 5, 0, 0}, {2, 0, 4, 0, 0}, {3, 0, 4.5, 0, 0}});
  CHECK(resumed.epoch() == 2);
  CHECK_FALSE(resumed.patience_ran_out(3));
  CHECK(resumed.patience_ran_out(4));
  CHECK_FALSE(tools::BestEpoch(0).patience_ran_out(1000));  // patience 0: never
}
