// One VAE training step timed op by op: the harness of bench_conv_step and bench_mlp_step.
//
// A tool writes its model's loss out op by op through Step (each forward op timed on its own,
// and its nodes labelled), and profile_step does the rest: checks that loss bit for bit
// against models::Vae::loss with the same noise (so the ops timed are the model's), then runs
// steps, each node's backward rule timed by swapping in a timing wrapper after the forward, and
// prints per op and thread count the minimum over the steps of its wall time in milliseconds,
// the thread counts' steps interleaved; or, with --cpu-time, of the calling thread's CPU time
// (for one thread: a busy machine's time slicing does not inflate it). The gradients start
// owed as zeros (Optimizer::defer_zero_grad), as in training.
#pragma once

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <functional>
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

namespace bench::step_profile {

// The clock every op is timed with: wall time, or the calling thread's CPU time.
inline bool g_cpu_time = false;
inline double now() {
  timespec t{};
  clock_gettime(g_cpu_time ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}
inline double seconds_since(double start) { return now() - start; }

// One step's times by label ("fwd encoder.0 conv2d", "bwd ..."), in order of first appearance.
struct Times {
  std::vector<std::string> order;
  std::map<std::string, double> seconds;
  void add(const std::string& label, double s) {
    if (!seconds.count(label)) order.push_back(label);
    seconds[label] += s;
  }
};

inline Times* g_times = nullptr;
struct Wrapped {
  ag::BackwardFn rule;
  std::string label;
};
inline std::unordered_map<const ag::Node*, Wrapped> g_wrapped;

inline void timed_backward(ag::Tape& tape, const ag::Node& node) {
  const Wrapped& w = g_wrapped.at(&node);
  const auto start = now();
  w.rule(tape, node);
  const double s = seconds_since(start);
  g_times->add("bwd " + w.label, s);
}

class Step {
 public:
  Step(models::Vae& vae, ag::Tape& tape, Times& times) : tape_(tape), times_(times) {
    for (auto& p : vae.named_parameters()) params_[p.name] = p.parameter;
  }

  ag::Tape& tape() { return tape_; }

  // Runs f, times it as "fwd label", and labels the nodes it recorded for the backward.
  template <class F>
  ag::Var op(const std::string& label, F f) {
    const std::size_t before = tape_.size();
    const auto start = now();
    ag::Var v = f();
    const double s = seconds_since(start);
    times_.add("fwd " + label, s);
    for (std::size_t i = before; i < tape_.size(); ++i) labels_.push_back({static_cast<std::uint32_t>(i), label});
    return v;
  }
  ag::Var p(const std::string& name) { return tape_.parameter(*params_.at(name)); }
  // The layer `name` (its weight and bias), with the ReLU after it fused when relu is set (as
  // nn::Sequential runs the model's).
  ag::Var linear(const std::string& name, ag::Var x, bool relu = false) {
    ag::Var w = p(name + ".weight");
    ag::Var b = p(name + ".bias");
    return op(name + (relu ? " linear+relu" : " linear"), [&] { return ag::linear(x, w, b, {.relu = relu}); });
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

// The model's loss written out op by op: (step, x, eps) -> the loss.
using LossOps = std::function<ag::Var(Step&, ag::Var, const ag::Array&)>;

// The whole tool: options, the bit-for-bit check, the timed steps, the table. `name` is the
// tool's, `what` the step it times; a batch (128 unless --batch) of random pixels (the time does not depend on them).
inline int profile_step(int argc, char** argv, const char* name, const char* what, const models::VaeConfig& config,
                        const LossOps& loss_ops) {
  std::size_t steps = 10;
  std::vector<int> thread_counts = {1, 2};
  CLI::App app{fmt::format("Times one {} training step op by op (forward, backward, Adam).", what)};
  app.add_option("--steps", steps, "steps per thread count (the minimum counts)")->capture_default_str();
  app.add_option("--threads", thread_counts, "thread counts, interleaved step by step")->delimiter(',');
  app.add_flag("--cpu-time", g_cpu_time, "time the calling thread's CPU time, not wall time (for 1 thread)");
  std::size_t kBatch = 128;
  app.add_option("--batch", kBatch, "examples per step")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  ag::Rng rng(1);
  models::Vae vae(config, rng);
  optim::Adam adam(vae.parameters(), {.lr = 1e-3});
  ag::Array batch({kBatch, config.input_dim}), eps({kBatch, config.latent});
  rng.fill_uniform(batch, 0.0F, 1.0F);
  rng.fill_normal(eps);
  ag::Tape tape;
  {  // the ops timed are the model's: the same loss, bit for bit
    const float model_loss = vae.loss(tape.constant(batch), eps).loss.item();
    tape.reset();
    Times scratch;
    Step step(vae, tape, scratch);
    const float ours = loss_ops(step, tape.constant(batch), eps).item();
    if (model_loss != ours) {
      fmt::print(stderr, "{}: loss {} differs from the model's {}\n", name, ours, model_loss);
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
      ag::Var loss = loss_ops(step, tape.constant(batch), eps);
      step.wrap_backward();
      timed("defer_zero_grad", [&] { adam.defer_zero_grad(); });
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

}  // namespace bench::step_profile
