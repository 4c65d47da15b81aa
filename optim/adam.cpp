#include "optim/adam.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#include "autograd/kernels/parallel.hpp"

namespace optim {

// Below this many elements per thread, handing a slice to another thread costs more than the
// slice (a wake-up of about a microsecond against about 0.1 ns per element).
constexpr std::size_t kMinElementsPerThread = 16384;

static AdamOptions checked(AdamOptions o) {
  auto in_unit = [](double beta) { return beta >= 0.0 && beta < 1.0; };
  if (!in_unit(o.beta1) || !in_unit(o.beta2))
    throw std::invalid_argument(
        fmt::format("Adam: betas must lie in [0, 1), got {} and {}", o.beta1, o.beta2));
  if (!(o.eps >= 0.0)) throw std::invalid_argument(fmt::format("Adam: invalid eps {}", o.eps));
  if (!(o.weight_decay >= 0.0))
    throw std::invalid_argument(fmt::format("Adam: invalid weight_decay {}", o.weight_decay));
  return o;
}

static std::vector<ParamGroup> one_group(std::vector<ag::Parameter*> params) {
  return {ParamGroup{std::move(params), {}, {}}};
}

Adam::Adam(std::vector<ag::Parameter*> params, AdamOptions options)
    : Adam(one_group(std::move(params)), options, false) {}

Adam::Adam(std::vector<ParamGroup> groups, AdamOptions options) : Adam(std::move(groups), options, false) {}

Adam::Adam(std::vector<ParamGroup> groups, AdamOptions options, bool decoupled_weight_decay)
    : Optimizer(std::move(groups), options.lr),
      options_(checked(options)),
      decoupled_(decoupled_weight_decay),
      exp_avg_(add_buffer("exp_avg")),
      exp_avg_sq_(add_buffer("exp_avg_sq")) {
  if (options_.amsgrad) max_exp_avg_sq_ = add_buffer("max_exp_avg_sq");
}

static AdamOptions as_adam(const AdamWOptions& o) { return {o.lr, o.beta1, o.beta2, o.eps, o.weight_decay, o.amsgrad}; }

AdamW::AdamW(std::vector<ag::Parameter*> params, AdamWOptions o) : Adam(one_group(std::move(params)), as_adam(o), true) {}

AdamW::AdamW(std::vector<ParamGroup> groups, AdamWOptions o) : Adam(std::move(groups), as_adam(o), true) {}

namespace {

// One step's constants, as floats.
struct AdamStep {
  float l2, b1, b2, one_minus_b1, one_minus_b2, shrink, step_size, sqrt_correction2, inv_sqrt_correction2, eps;
};

// sqrt(v) / sqrt_correction2, the division PyTorch does, without a divide instruction: the
// update is bound by the core's one divide / square-root unit (per element a square root and,
// otherwise, two divisions), while fused multiply-adds run on other units. With r = 1 / c
// correctly rounded and q = x r within an ulp of x / c, the remainder x - q c is exact in one
// fma and q + r (x - q c) rounds to x / c correctly rounded (Markstein's theorem), so the
// result is the division's, bit for bit; tests/test_optimizers.cpp checks that against the
// division over many steps' corrections. (About 5% of an epoch at batch 32, one thread.)
inline float divide_by_correction(float x, const AdamStep& s) {
  const float q = x * s.inv_sqrt_correction2;
  return std::fma(std::fma(-q, s.sqrt_correction2, x), s.inv_sqrt_correction2, q);
}

// The update of n elements. A plain function of restrict pointers and local constants, so the
// loop vectorizes (inside a lambda reading captured constants through a reference, g++ 12
// kept it scalar). It vectorizes at all because the project builds with -fno-math-errno
// (meson.build): otherwise std::sqrt must stay a call that may set errno.
void adam_slice(const AdamStep& step, float* __restrict w, const float* __restrict g, float* __restrict m,
                float* __restrict v, std::size_t n) {
  const AdamStep s = step;
  for (std::size_t i = 0; i < n; ++i) {
    const float d = g[i] + s.l2 * w[i];
    m[i] = s.b1 * m[i] + s.one_minus_b1 * d;
    v[i] = s.b2 * v[i] + s.one_minus_b2 * d * d;
    w[i] = s.shrink * w[i] - s.step_size * m[i] / (divide_by_correction(std::sqrt(v[i]), s) + s.eps);
  }
}

// The same with AMSGrad: the step divides by the largest v so far.
void amsgrad_slice(const AdamStep& step, float* __restrict w, const float* __restrict g, float* __restrict m,
                   float* __restrict v, float* __restrict v_max, std::size_t n) {
  const AdamStep s = step;
  for (std::size_t i = 0; i < n; ++i) {
    const float d = g[i] + s.l2 * w[i];
    m[i] = s.b1 * m[i] + s.one_minus_b1 * d;
    v[i] = s.b2 * v[i] + s.one_minus_b2 * d * d;
    v_max[i] = std::max(v_max[i], v[i]);
    w[i] = s.shrink * w[i] - s.step_size * m[i] / (divide_by_correction(std::sqrt(v_max[i]), s) + s.eps);
  }
}

// While alive, the calling thread's float arithmetic treats subnormal inputs as zero and
// flushes subnormal results to zero (x86's DAZ and FTZ modes); the previous mode comes back
// after. A weight whose gradient is 0 for a run of steps (a pixel blank in every image of
// the batch) has its first moment decay by beta1 a step, through the subnormal range below
// 2^-126, and on Intel cores an operation producing or reading a subnormal takes a microcode
// assist of about a hundred cycles: Adam then took half of a batch-32 epoch on a Xeon (perf;
// 1 thread, 4.85 s with IEEE subnormals, 2.53 s flushed; on the AMD EPYC of earlier rounds the
// batch-32 epoch took 1.4 times the batch-128 one, on the Xeon 2.6 times). A first moment below
// 2^-126 moves its weight by less than 1e-30 a step (eps 1e-8, lr 1e-3), so flushing it changes
// nothing a model can see; the results stay
// deterministic, though not bit for bit those of IEEE arithmetic (nor of PyTorch, which keeps
// subnormals). Elsewhere (no SSE control register) the arithmetic stays IEEE.
class FlushSubnormals {
 public:
#if defined(__SSE__)
  FlushSubnormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | kFlushToZero | kDenormalsAreZero); }
  ~FlushSubnormals() { _mm_setcsr(saved_); }
  FlushSubnormals(const FlushSubnormals&) = delete;
  FlushSubnormals& operator=(const FlushSubnormals&) = delete;

 private:
  static constexpr unsigned kFlushToZero = 0x8000, kDenormalsAreZero = 0x0040;  // MXCSR bits 15, 6
  unsigned saved_;
#endif
};

}  // namespace

void Adam::update(std::size_t index, ag::Parameter& p) {
  // Per-step constants in double, as PyTorch computes them in Python floats; the loop is float.
  const double t = static_cast<double>(step_count());
  const double correction1 = 1.0 - std::pow(options_.beta1, t);
  const double correction2 = 1.0 - std::pow(options_.beta2, t);
  const double lr = this->lr(index), weight_decay = this->weight_decay(index, options_.weight_decay);
  const AdamStep step{
      .l2 = decoupled_ ? 0.0F : static_cast<float>(weight_decay),
      .b1 = static_cast<float>(options_.beta1),
      .b2 = static_cast<float>(options_.beta2),
      .one_minus_b1 = static_cast<float>(1.0 - options_.beta1),
      .one_minus_b2 = static_cast<float>(1.0 - options_.beta2),
      .shrink = decoupled_ ? static_cast<float>(1.0 - lr * weight_decay) : 1.0F,
      .step_size = static_cast<float>(lr / correction1),
      .sqrt_correction2 = static_cast<float>(std::sqrt(correction2)),
      .inv_sqrt_correction2 = 1.0F / static_cast<float>(std::sqrt(correction2)),
      .eps = static_cast<float>(options_.eps),
  };
  float* w = p.value.data();
  const float* g = p.grad.data();
  float* m = buffer(exp_avg_, index).data();
  float* v = buffer(exp_avg_sq_, index).data();
  float* v_max = options_.amsgrad ? buffer(max_exp_avg_sq_, index).data() : nullptr;
  // Slices on all threads (each element's update is independent, so the result is the same
  // for any cut). A [400, 784] weight streams four arrays, 5 MB, from L3: two cores draw that
  // through their L2s faster than one.
  ag::parallel_for(p.value.size(), kMinElementsPerThread, [&](std::size_t begin, std::size_t end) {
    const FlushSubnormals flush;  // on each thread that runs a slice
    if (v_max == nullptr)
      adam_slice(step, w + begin, g + begin, m + begin, v + begin, end - begin);
    else
      amsgrad_slice(step, w + begin, g + begin, m + begin, v + begin, v_max + begin, end - begin);
  });
}

}  // namespace optim
