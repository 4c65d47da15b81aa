// bench_conv_step: where one training step of the conv VAE spends its time, op by op.
//
//   build/bench/bench_conv_step [--steps N] [--threads 1,2] [--cpu-time]
//
// The step of `vae train --arch conv` at batch 128 (random pixels: the time does not depend on
// them), written out op by op over the model's own parameters so each forward op can be timed
// on its own; each node's backward rule is timed by swapping in a timing wrapper after the
// forward. The loss is checked bit for bit against models::Vae::loss with the same noise, so
// the ops timed are the model's. Prints, per op and thread count, the minimum over the steps
// of its wall time in milliseconds, the thread counts' steps interleaved; or, with --cpu-time,
// of the calling thread's CPU time (for one thread: a busy machine's time slicing does not
// inflate it).
#include <algorithm>
#include <ctime>
#include <cstdio>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "autograd/autograd.hpp"
#include "autograd/kernels/parallel.hpp"
#include "models/vae.hpp"
#include "optim/adam.hpp"

namespace {

// The clock every op is timed with: wall time, or the calling thread's CPU time.
bool g_cpu_time = false;
double now() {
  timespec t{};
  clock_gettime(g_cpu_time ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}
double seconds_since(double start) { return now() - start; }

// One step's times by label ("fwd encoder.0 conv2d", "bwd ..."), in order of first appearance.
struct Times {
  std::vector<std::string> order;
  std::map<std::string, double> seconds;
  void add(const std::string& label, double s) {
    if (!seconds.count(label)) order.push_back(label);
    seconds[label] += s;
  }
};

Times* g_times = nullptr;
struct Wrapped {
  ag::BackwardFn rule;
  std::string label;
};
std::unordered_map<const ag::Node*, Wrapped> g_wrapped;

void timed_backward(ag::Tape& tape, const ag::Node& node) {
  const Wrapped& w = g_wrapped.at(&node);
  const auto start = now();
  w.rule(tape, node);
  g_times->add("bwd " + w.label, seconds_since(start));
}

class Step {
 public:
  Step(models::Vae& vae, ag::Tape& tape, Times& times) : tape_(tape), times_(times) {
    for (auto& p : vae.named_parameters()) params_[p.name] = p.parameter;
  }

  // Runs f, times it as "fwd label", and labels the nodes it recorded for the backward.
  template <class F>
  ag::Var op(const std::string& label, F f) {
    const std::size_t before = tape_.size();
    const auto start = now();
    ag::Var v = f();
    times_.add("fwd " + label, seconds_since(start));
    for (std::size_t i = before; i < tape_.size(); ++i) labels_.push_back({static_cast<std::uint32_t>(i), label});
    return v;
  }
  ag::Var p(const std::string& name) { return tape_.parameter(*params_.at(name)); }
  ag::Var linear(const std::string& name, ag::Var x) {
    ag::Var w = p(name + ".weight");
    ag::Var b = p(name + ".bias");
    return op(name + " linear", [&] { return ag::linear(x, w, b); });
  }
  ag::Var relu(const std::string& name, ag::Var x) {
    return op(name + " relu", [&] { return ag::relu(x); });
  }
  // with relu, the ReLU after it fused (as nn::Sequential runs the model's)
  ag::Var conv(const std::string& name, ag::Var x, bool transposed, bool relu) {
    ag::Var w = p(name + ".weight");
    ag::Var b = p(name + ".bias");
    return op(name + (transposed ? " conv_transpose2d" : " conv2d") + (relu ? "+relu" : ""), [&] {
      return transposed ? ag::conv_transpose2d(x, w, b, {.stride = 2, .padding = 1, .relu = relu})
                        : ag::conv2d(x, w, b, {.stride = 2, .padding = 1, .relu = relu});
    });
  }

  ag::Var loss(const ag::Array& batch, const ag::Array& eps) {
    labels_.clear();
    const std::size_t b = batch.shape()[0];
    ag::Var x = tape_.constant(batch);
    ag::Var h = op("reshape", [&] { return ag::reshape(x, {b, 1, 28, 28}); });
    h = conv("encoder.0", h, false, true);
    h = conv("encoder.2", h, false, true);
    h = op("flatten", [&] { return ag::flatten(h, 1); });
    h = relu("encoder.6", linear("encoder.5", h));
    ag::Var mu = linear("mu", h), logvar = linear("logvar", h);
    ag::Var z = op("reparameterize", [&] { return ag::reparameterize(mu, logvar, eps); });
    h = relu("decoder.1", linear("decoder.0", z));
    h = relu("decoder.3", linear("decoder.2", h));
    h = op("unflatten", [&] { return ag::reshape(h, {b, 64, 7, 7}); });
    h = conv("decoder.5", h, true, true);
    h = conv("out", h, true, false);
    h = op("reshape", [&] { return ag::reshape(h, {b, 784}); });
    ag::Var rec = op("bce", [&] { return ag::bce_with_logits(h, x, ag::Reduction::batch_mean); });
    ag::Var kl = op("kl", [&] { return ag::kl_to_standard_normal(mu, logvar, ag::Reduction::batch_mean); });
    return op("loss sum", [&] { return rec + kl * 1.0F; });
  }

  // Wraps every labelled node's backward rule in timed_backward.
  void wrap_backward() {
    g_wrapped.clear();
    for (const auto& [index, label] : labels_) {
      ag::Node& n = tape_.node(index);
      if (n.backward == nullptr) continue;
      g_wrapped[&n] = {n.backward, label};
      n.backward = timed_backward;
    }
  }

 private:
  struct Label {
    std::uint32_t index;
    std::string label;
  };
  ag::Tape& tape_;
  Times& times_;
  std::map<std::string, ag::Parameter*> params_;
  std::vector<Label> labels_;
};

}  // namespace

int main(int argc, char** argv) {
  std::size_t steps = 10;
  std::vector<int> thread_counts = {1, 2};
  CLI::App app{"Times one conv-VAE training step op by op (forward, backward, Adam)."};
  app.add_option("--steps", steps, "steps per thread count (the minimum counts)")->capture_default_str();
  app.add_option("--threads", thread_counts, "thread counts, interleaved step by step")->delimiter(',');
  app.add_flag("--cpu-time", g_cpu_time, "time the calling thread's CPU time, not wall time (for 1 thread)");
  CLI11_PARSE(app, argc, argv);
  constexpr std::size_t kBatch = 128, kLatent = 20;
  ag::Rng rng(1);
  models::Vae vae({.input_dim = 784, .latent = kLatent, .arch = models::Arch::conv, .image = {1, 28, 28}}, rng);
  optim::Adam adam(vae.parameters(), {.lr = 1e-3});
  ag::Array batch({kBatch, 784}), eps({kBatch, kLatent});
  rng.fill_uniform(batch, 0.0F, 1.0F);
  rng.fill_normal(eps);
  ag::Tape tape;
  {  // the ops timed are the model's: the same loss, bit for bit
    const float model_loss = vae.loss(tape.constant(batch), eps).loss.item();
    tape.reset();
    Times scratch;
    const float ours = Step(vae, tape, scratch).loss(batch, eps).item();
    if (model_loss != ours) {
      fmt::print(stderr, "bench_conv_step: loss {} differs from the model's {}\n", ours, model_loss);
      return 1;
    }
  }
  std::map<int, std::map<std::string, double>> best;  // threads -> label -> min seconds
  std::vector<std::string> order;
  for (std::size_t s = 0; s < steps + 1; ++s) {
    for (int threads : thread_counts) {
      ag::set_num_threads(threads);
      Times times;
      g_times = &times;
      Step step(vae, tape, times);
      const auto start = now();
      auto timed = [&](const char* label, auto f) {
        const auto t0 = now();
        f();
        times.add(label, seconds_since(t0));
      };
      timed("tape reset", [&] { tape.reset(); });
      ag::Var loss = step.loss(batch, eps);
      step.wrap_backward();
      timed("zero_grad", [&] { adam.zero_grad(); });
      timed("backward (all)", [&] { tape.backward(loss); });
      timed("adam step", [&] { adam.step(); });
      times.add("step (all)", seconds_since(start));
      if (s == 0) {  // warm-up
        if (order.empty()) order = times.order;
        continue;
      }
      for (const auto& [label, sec] : times.seconds) {
        auto [it, fresh] = best[threads].try_emplace(label, sec);
        if (!fresh) it->second = std::min(it->second, sec);
      }
    }
  }
  fmt::print("{:<40}", "ms (min over steps)");
  for (int threads : thread_counts) fmt::print(" {:>9}", fmt::format("{} thr", threads));
  fmt::print("\n");
  for (const std::string& label : order) {
    fmt::print("{:<40}", label);
    for (int threads : thread_counts) fmt::print(" {:9.3f}", best[threads][label] * 1e3);
    fmt::print("\n");
  }
  return 0;
}
