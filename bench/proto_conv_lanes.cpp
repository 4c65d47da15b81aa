// proto_conv_lanes: the batch-in-lanes prototype of the conv VAE's 7 x 7 layers
// (bench/conv_lanes/lanes_layer.hpp) checked against, and timed beside, the framework's ops.
//
//   build/bench/proto_conv_lanes [--layer encoder|decoder] [--threads N] [--reps N] [--batch N] [--hot N]
//                                [--down indirect|packed] [--down-kc K] [--up-kc K]
//
// For the layer at batch 128 (--batch): y = relu(conv + b) and its backward (dx, dW, db for a random dy),
// once through ag::conv2d / ag::conv_transpose2d on a Tape and once by the prototype, on the
// same random data. Prints the largest difference of each result relative to the largest
// magnitude of the op's, then the forward and backward times of both, interleaved rep by rep
// (CPU time of the calling thread at 1 thread, wall time otherwise): minimum and median; then
// the prototype's mean time per part (TSC ticks of all threads, in ms).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <x86intrin.h>

#include "autograd/autograd.hpp"
#include "autograd/kernels/parallel.hpp"
#include "bench/conv_lanes/lanes_layer.hpp"

namespace {

double now_seconds(bool cpu) {
  if (cpu) {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double ticks_per_second() {
  const auto t0 = std::chrono::steady_clock::now();
  const std::uint64_t c0 = __rdtsc();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const std::uint64_t c1 = __rdtsc();
  return static_cast<double>(c1 - c0) / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double relative_error(const ag::Array& ref, const std::vector<float>& got) {
  double diff = 0, scale = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    diff = std::max(diff, static_cast<double>(std::fabs(ref.data()[i] - got[i])));
    scale = std::max(scale, static_cast<double>(std::fabs(ref.data()[i])));
  }
  return diff / scale;
}

// FNV-1a of the floats' bytes: the prototype's results at 1 and 2 threads should be the same bits.
std::uint64_t bits_hash(const std::vector<float>& v) {
  std::uint64_t h = 1469598103934665603ULL;
  for (float f : v) {
    std::uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    for (int k = 0; k < 4; ++k) h = (h ^ ((u >> (8 * k)) & 0xFF)) * 1099511628211ULL;
  }
  return h;
}

struct Stats {
  std::vector<double> ms;
  void add(double seconds) { ms.push_back(seconds * 1e3); }
  std::string str() const {
    std::vector<double> s = ms;
    std::sort(s.begin(), s.end());
    return fmt::format("min {:.3f} median {:.3f}", s.front(), s[s.size() / 2]);
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::string layer = "encoder", down = "indirect";
  int threads = 1, reps = 20, hot = 0;
  std::size_t batch = 128;
  std::size_t down_kc = 512, up_kc = 256, weight_rows = 6;
  CLI::App app{"The batch-in-lanes prototype of the 7 x 7 conv layers beside the framework's ops."};
  app.add_option("--layer", layer, "encoder (encoder.2) or decoder (decoder.5)")->capture_default_str();
  app.add_option("--threads", threads, "threads")->capture_default_str();
  app.add_option("--batch", batch, "images (a multiple of 16)")->capture_default_str()->check([](const std::string& v) {
    return std::stoul(v) % 16 == 0 && std::stoul(v) > 0 ? std::string() : std::string("not a multiple of 16");
  });
  app.add_option("--reps", reps, "interleaved repetitions")->capture_default_str();
  app.add_option("--down", down, "indirect or packed: how the conv2d product reads its B")->capture_default_str();
  app.add_option("--down-kc", down_kc, "K block of the conv2d product (divides 512)")->capture_default_str();
  app.add_option("--up-kc", up_kc, "K block of the adjoint product (divides 256)")->capture_default_str();
  app.add_option("--weight-rows", weight_rows, "output channels a weight-gradient tile (4 or 6)")
      ->capture_default_str();
  app.add_option("--hot", hot, "then time each product N times alone on one chunk's buffers")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  ag::set_num_threads(threads);
  const bool encoder = layer == "encoder";
  const bool cpu = threads == 1;

  const ag::Shape x_shape = encoder ? ag::Shape{batch, 32, 14, 14} : ag::Shape{batch, 64, 7, 7};
  const ag::Shape y_shape = encoder ? ag::Shape{batch, 64, 7, 7} : ag::Shape{batch, 32, 14, 14};
  const std::size_t out_c = y_shape[1], out_plane = y_shape[2] * y_shape[3];
  ag::Rng rng(1);
  ag::Array x(x_shape), w({64, 32, 4, 4}), b({out_c}), dy(y_shape);
  rng.fill_uniform(x, -1.0F, 1.0F);
  rng.fill_uniform(w, -0.1F, 0.1F);
  rng.fill_uniform(b, -0.1F, 0.1F);
  rng.fill_uniform(dy, -1.0F, 1.0F);

  // The framework's op.
  ag::Tape tape;
  ag::Var xv, wv, bv, yv;
  auto op_forward = [&] {
    return encoder ? ag::conv2d(xv, wv, bv, {.stride = 2, .padding = 1, .relu = true})
                   : ag::conv_transpose2d(xv, wv, bv, {.stride = 2, .padding = 1, .relu = true});
  };
  auto op_record = [&] {
    tape.reset();
    xv = tape.variable(x);
    wv = tape.variable(w);
    bv = tape.variable(b);
  };

  // The prototype.
  const lanes::Plan plan = lanes::make_plan(
      w.data(), {.down = down == "packed" ? lanes::DownKernel::packed : lanes::DownKernel::indirect,
                 .down_kc = down_kc,
                 .up_kc = up_kc,
                 .weight_rows = weight_rows});
  lanes::Workspace ws = lanes::make_workspace(threads);
  std::vector<float> bias_expanded(out_c * out_plane);
  for (std::size_t i = 0; i < bias_expanded.size(); ++i) bias_expanded[i] = b.data()[i / out_plane];
  std::vector<float> y(batch * out_c * out_plane), dx(x.size()), dw(w.size()), db(out_c);
  const lanes::Layer which = encoder ? lanes::Layer::encoder2 : lanes::Layer::decoder5;
  auto proto_forward = [&] { lanes::forward(plan, which, x.data(), bias_expanded.data(), batch, y.data(), ws); };
  auto proto_backward = [&] {
    lanes::backward(plan, which, x.data(), y.data(), dy.data(), batch, dx.data(), dw.data(), db.data(), ws);
  };

  // Check.
  op_record();
  yv = op_forward();
  tape.backward(yv, dy);
  proto_forward();
  proto_backward();
  fmt::print("{} ({}), {} thread(s), down {} kc {}, up kc {}, weight rows {}\n", layer,
             encoder ? "conv2d 32->64, 14x14->7x7" : "conv_transpose2d 64->32, 7x7->14x14", threads, down, down_kc,
             up_kc, weight_rows);
  fmt::print("relative error: y {:.2e}  dx {:.2e}  dW {:.2e}  db {:.2e}\n", relative_error(yv.value(), y),
             relative_error(xv.grad(), dx), relative_error(wv.grad(), dw), relative_error(bv.grad(), db));
  fmt::print("bits (hash): y {:016x}  dx {:016x}  dW {:016x}  db {:016x}\n", bits_hash(y), bits_hash(dx), bits_hash(dw),
             bits_hash(db));

  // Time, interleaved.
  Stats op_f, op_b, pr_f, pr_b;
  std::uint64_t ticks[2][lanes::kParts] = {};  // forward, backward
  auto take_ticks = [&](std::uint64_t* into) {
    for (auto& s : ws.slots)
      for (int p = 0; p < lanes::kParts; ++p) into[p] += std::exchange(s.ticks[p], 0);
  };
  for (int r = 0; r < reps; ++r) {
    op_record();
    double t0 = now_seconds(cpu);
    yv = op_forward();
    double t1 = now_seconds(cpu);
    tape.backward(yv, dy);
    double t2 = now_seconds(cpu);
    op_f.add(t1 - t0);
    op_b.add(t2 - t1);

    for (auto& s : ws.slots) std::fill(std::begin(s.ticks), std::end(s.ticks), 0);
    t0 = now_seconds(cpu);
    proto_forward();
    t1 = now_seconds(cpu);
    pr_f.add(t1 - t0);
    take_ticks(ticks[0]);
    t1 = now_seconds(cpu);
    proto_backward();
    t2 = now_seconds(cpu);
    pr_b.add(t2 - t1);
    take_ticks(ticks[1]);
  }
  fmt::print("{} time, ms, {} reps interleaved\n", cpu ? "cpu" : "wall", reps);
  fmt::print("  op     forward {}   backward {}\n", op_f.str(), op_b.str());
  fmt::print("  lanes  forward {}   backward {}\n", pr_f.str(), pr_b.str());
  const double per_ms = ticks_per_second() / 1e3 * reps;
  fmt::print("lanes, mean ms per call by part (TSC, all threads summed):  forward  backward\n");
  for (int p = 0; p < lanes::kParts; ++p)
    fmt::print("  {:<22} {:8.3f} {:8.3f}\n", lanes::kPartNames[p], static_cast<double>(ticks[0][p]) / per_ms,
               static_cast<double>(ticks[1][p]) / per_ms);
  if (hot > 0) {
    // The products' floating-point work a chunk: each is 64 x 512 x 49 multiply-adds an image.
    const double flop = 2.0 * 64 * 512 * 49 * 16 * hot;
    std::uint64_t hot_ticks[3];
    lanes::hot_products(plan, ws, hot, hot_ticks);
    const double tps = per_ms * 1e3 / reps;
    fmt::print("products alone on one chunk's buffers, {} calls: down {:.1f}  up {:.1f}  weight {:.1f} GFLOP/s\n", hot,
               flop / (static_cast<double>(hot_ticks[0]) / tps) * 1e-9,
               flop / (static_cast<double>(hot_ticks[1]) / tps) * 1e-9,
               flop / (static_cast<double>(hot_ticks[2]) / tps) * 1e-9);
  }
  if (hot > 0 && encoder) {
    const double ms = static_cast<double>(lanes::hot_transposes(plan, ws, x.data(), hot)) / (per_ms / reps) / hot;
    fmt::print("big side's transposes alone, in L2: in + out {:.4f} ms a chunk ({:.3f} ms for the batch's {} chunks)\n",
               ms, ms * static_cast<double>(batch / 16), batch / 16);
  }
  lanes::free_workspace(ws);
  return 0;
}
