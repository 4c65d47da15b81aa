// The tape: values and gradients of small graphs worked out by hand, the no-grad guard,
// errors, introspection, deep graphs and storage reuse.
#include <doctest/doctest.h>

#include <cstring>
#include <limits>
#include <sstream>
#include <vector>

#include "autograd/autograd.hpp"

using ag::Array;
using ag::Var;

TEST_CASE("backward of a small graph gives the hand-derived gradients") {
  ag::Tape tape;
  // f = sum((a * b + a)^2) with a = [1, 2], b = [3, -1]:
  // inner = a*b + a = [4, 0]; f = 16; df/da = 2 inner (b + 1) = [32, 0]; df/db = 2 inner a = [8, 0]
  Var a = tape.variable(Array{{1.0F, 2.0F}});
  Var b = tape.variable(Array{{3.0F, -1.0F}});
  Var f = ag::sum(ag::square(a * b + a));
  CHECK(f.item() == 16.0F);
  tape.backward(f);
  CHECK(a.grad()(0, 0) == 32.0F);
  CHECK(a.grad()(0, 1) == 0.0F);
  CHECK(b.grad()(0, 0) == 8.0F);
  CHECK(b.grad()(0, 1) == 0.0F);
}

TEST_CASE("a variable used twice gets both contributions") {
  ag::Tape tape;
  Var x = tape.variable(Array{{3.0F}});
  Var y = x * x + x;  // dy/dx = 2x + 1 = 7
  tape.backward(y);
  CHECK(x.grad()(0, 0) == 7.0F);
}

TEST_CASE("constants get no gradient and cost nothing") {
  ag::Tape tape;
  Var c = tape.constant(Array{{2.0F}});
  Var x = tape.variable(Array{{5.0F}});
  Var y = c * x;
  CHECK_FALSE(c.requires_grad());
  CHECK(y.requires_grad());
  tape.backward(y);
  CHECK(x.grad()(0, 0) == 2.0F);
  CHECK_THROWS_AS(c.grad(), std::logic_error);
  CHECK_THROWS_AS(tape.backward(ag::exp(c)), std::logic_error);  // nothing to differentiate
}

TEST_CASE("parameters accumulate across backward calls until zeroed") {
  ag::Parameter w(Array{{2.0F, -1.0F}});
  ag::Tape tape;
  for (int step = 0; step < 2; ++step) {
    Var loss = ag::sum(ag::square(tape.parameter(w)));  // d/dw = 2w
    tape.backward(loss);
    tape.reset();
  }
  CHECK(w.grad(0, 0) == 8.0F);
  CHECK(w.grad(0, 1) == -4.0F);
  w.zero_grad();
  CHECK(w.grad(0, 0) == 0.0F);
}

// The parameters of deferred_zero_grad_graph, built from the same seed for each run.
struct DeferredZeroParams {
  ag::Parameter w1, b1, w2, u, unused, absent;
  DeferredZeroParams() {
    ag::Rng rng(3);
    auto draw = [&rng](ag::Shape shape) {
      Array a(shape);
      rng.fill_normal(a);
      return ag::Parameter(a);
    };
    w1 = draw({6, 4});
    b1 = draw({6});
    w2 = draw({3, 6});
    u = draw({2, 3});
    unused = draw({2, 2});
    absent = draw({5});
  }
  std::vector<ag::Parameter*> all() { return {&w1, &b1, &w2, &u, &unused, &absent}; }
};

// loss = sum(linear(relu(linear(x, w1, b1)), w2)^2) + sum(u^2): w1, b1 and w2 are first reached
// by linear (which writes fresh gradients), u by square (which adds); `unused` is on the tape
// but the loss does not depend on it; `absent` never enters the tape.
static void deferred_zero_grad_graph(ag::Tape& tape, DeferredZeroParams& p, float shift) {
  tape.reset();
  Array x({5, 4});
  for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(i % 7) * 0.25F - 0.7F + shift;
  tape.parameter(p.unused);
  Var w1 = tape.parameter(p.w1);
  Var b1 = tape.parameter(p.b1);
  Var h = ag::relu(ag::linear(tape.constant(x), w1, b1));
  Var w2 = tape.parameter(p.w2);
  Var u = tape.parameter(p.u);
  tape.backward(ag::sum(ag::square(ag::linear(h, w2))) + ag::sum(ag::square(u)));
}

TEST_CASE("a deferred zero_grad gives zero_grad's gradients bit for bit, and zeros where none flowed") {
  DeferredZeroParams eager, deferred;
  ag::Tape tape;
  for (ag::Parameter* q : deferred.all()) {  // what the buffers hold before: garbage, even NaN
    q->grad.fill(std::numeric_limits<float>::quiet_NaN());
    q->grad.data()[0] = 7.0F;
  }
  for (ag::Parameter* q : eager.all()) q->zero_grad();
  for (ag::Parameter* q : deferred.all()) q->defer_zero_grad();
  CHECK(deferred.w1.grad_zero_pending);
  // Two backward calls accumulate, as without deferral.
  for (const float shift : {0.0F, 0.3F}) {
    deferred_zero_grad_graph(tape, eager, shift);
    deferred_zero_grad_graph(tape, deferred, shift);
  }
  const auto bits_equal = [](const Array& a, const Array& b) {
    return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
  };
  const std::vector<ag::Parameter*> e = eager.all(), d = deferred.all();
  for (std::size_t i = 0; i + 1 < e.size(); ++i) {  // all but `absent`, settled by the sweep
    CAPTURE(i);
    CHECK_FALSE(d[i]->grad_zero_pending);
    CHECK(bits_equal(d[i]->grad, e[i]->grad));
  }
  for (float g : deferred.unused.grad) CHECK(g == 0.0F);
  float sum_w1 = 0;
  for (float g : deferred.w1.grad) sum_w1 += std::abs(g);
  CHECK(sum_w1 > 0.0F);  // (a gradient flowed, so the comparison above compared something)
  // `absent` keeps its garbage until settled (by whoever reads it: see test_optimizers.cpp).
  CHECK(deferred.absent.grad_zero_pending);
  deferred.absent.settle_grad();
  for (float g : deferred.absent.grad) CHECK(g == 0.0F);
}

TEST_CASE("the parameter hook hears of each parameter leaf as the sweep passes it, its gradient then final") {
  // loss = sum(w * v) + sum(w * w): w's leaf is recorded first and used by both terms; v's
  // leaf is used once. Sweeping from the end, v's leaf is passed first, then w's.
  ag::Parameter w(Array{{2.0F, -1.0F}}), v(Array{{3.0F, 5.0F}});
  ag::Tape tape;
  Var wv = tape.parameter(w);
  Var vv = tape.parameter(v);
  Var loss = ag::sum(wv * vv) + ag::sum(ag::square(wv));
  struct Heard {
    std::vector<const ag::Parameter*> order;
    std::vector<std::vector<float>> grads;  // each parameter's gradient when it was heard of
  } heard;
  tape.set_parameter_hook(
      [](void* context, ag::Parameter& p) {
        auto& h = *static_cast<Heard*>(context);
        h.order.push_back(&p);
        h.grads.emplace_back(p.grad.begin(), p.grad.end());
      },
      &heard);
  tape.backward(loss);
  REQUIRE(heard.order == std::vector<const ag::Parameter*>{&v, &w});
  CHECK(heard.grads[0] == std::vector<float>{2.0F, -1.0F});  // d/dv = w
  CHECK(heard.grads[1] == std::vector<float>{3.0F + 4.0F, 5.0F - 2.0F});  // d/dw = v + 2w: both terms in
  tape.set_parameter_hook(nullptr, nullptr);
  tape.backward(loss);
  CHECK(heard.order.size() == 2);  // no hook, no calls
}

TEST_CASE("backward with an explicit seed computes a vector-Jacobian product") {
  ag::Tape tape;
  Var x = tape.variable(Array{{1.0F, 2.0F, 3.0F}});
  Var y = x * 3.0F;
  tape.backward(y, Array{{1.0F, 10.0F, 100.0F}});
  CHECK(x.grad()(0, 0) == 3.0F);
  CHECK(x.grad()(0, 1) == 30.0F);
  CHECK(x.grad()(0, 2) == 300.0F);
  CHECK_THROWS_AS(tape.backward(y), ag::ShapeError);  // a non-scalar root needs a seed
}

TEST_CASE("inside a NoGradGuard values are computed but nothing requires a gradient") {
  ag::Tape tape;
  Var x = tape.variable(Array{{2.0F}});
  {
    ag::NoGradGuard no_grad(tape);
    Var y = ag::exp(x) * x;
    CHECK(y.item() == doctest::Approx(2.0 * std::exp(2.0)));
    CHECK_FALSE(y.requires_grad());
    const bool has_rule = tape.node(y).backward != nullptr;
    CHECK_FALSE(has_rule);
    CHECK_THROWS_AS(tape.backward(y), std::logic_error);
  }
  Var z = x * x;  // recording is back on after the scope
  CHECK(z.requires_grad());
}

TEST_CASE("a shape mismatch throws ShapeError naming the op and both shapes") {
  ag::Tape tape;
  Var a = tape.variable(Array({3, 4}));
  Var b = tape.variable(Array({2, 4}));
  auto message_of = [](auto&& f) {
    try {
      f();
    } catch (const ag::ShapeError& e) {
      return std::string(e.what());
    }
    return std::string("no ShapeError");
  };
  const std::string add = message_of([&] { a + b; });
  CHECK(add.find("add") != std::string::npos);
  CHECK(add.find("[3, 4]") != std::string::npos);
  CHECK(add.find("[2, 4]") != std::string::npos);
  const std::string mm = message_of([&] { ag::matmul(a, b); });
  CHECK(mm.find("matmul") != std::string::npos);
  CHECK(mm.find("[3, 4]") != std::string::npos);
  CHECK(mm.find("[2, 4]") != std::string::npos);
  CHECK(message_of([&] { ag::concat(a, b); }).find("concat") != std::string::npos);
  CHECK(message_of([&] { ag::kl_to_standard_normal(a, b); }).find("[2, 4]") != std::string::npos);
  CHECK(message_of([&] { ag::reshape(a, {5, 2}); }).find("reshape") != std::string::npos);
  CHECK(message_of([&] { ag::slice(a, 2, 0, 1); }).find("slice") != std::string::npos);  // no axis 2
  CHECK(message_of([&] { ag::linear(a, ag::transpose(b)); }).find("linear") != std::string::npos);
}

TEST_CASE("a result of more elements than memory holds, or a convolution over nothing, is a ShapeError") {
  // 4 x 4 pixels upsampled 2^31 times each way make 2^66 elements, which counted in 64 bits
  // wrapped around to 0: the op wrote its result past an empty array (SIGSEGV).
  ag::Tape tape;
  Var x = tape.variable(Array({1, 1, 4, 4}));
  CHECK_THROWS_WITH_AS(ag::upsample_nearest2d(x, {1U << 31, 1U << 31}),
                       doctest::Contains("upsample_nearest2d: the result [1, 1, 8589934592, 8589934592] has more than "
                                         "2^40 elements"),
                       ag::ShapeError);
  Var one = tape.variable(Array({1, 1}));
  CHECK_THROWS_WITH_AS(ag::broadcast_to(one, {std::size_t{1} << 32, std::size_t{1} << 32}),
                       doctest::Contains("broadcast_to: the result [4294967296, 4294967296]"), ag::ShapeError);
  CHECK_THROWS_AS(ag::conv2d(x, tape.variable(Array({1, 1, 1, 1})), {.padding = 1U << 31}), ag::ShapeError);
  // No input channel, or a kernel of no pixels: GEMMs over K = 0, which the weight packing
  // divided by (SIGFPE under the sanitizers' build).
  CHECK_THROWS_WITH_AS(ag::conv2d(tape.variable(Array({1, 0, 5, 5})), tape.variable(Array({2, 0, 3, 3}))),
                       doctest::Contains("conv2d: input [1, 0, 5, 5] has no channels"), ag::ShapeError);
  CHECK_THROWS_WITH_AS(ag::conv_transpose2d(tape.variable(Array({1, 0, 5, 5})), tape.variable(Array({0, 2, 3, 3}))),
                       doctest::Contains("conv_transpose2d: input [1, 0, 5, 5] has no channels"), ag::ShapeError);
  CHECK_THROWS_WITH_AS(ag::conv_transpose2d(tape.variable(Array({1, 1, 5, 5})), tape.variable(Array({1, 2, 0, 3}))),
                       doctest::Contains("has a kernel of no pixels"), ag::ShapeError);
  // No output channel: GEMMs of no rows, whose chunking of images divided by 0 (SIGFPE).
  CHECK_THROWS_WITH_AS(ag::conv2d(tape.variable(Array({1, 1, 5, 5})), tape.variable(Array({0, 1, 3, 3}))),
                       doctest::Contains("conv2d: weight [0, 1, 3, 3] has no output channels"), ag::ShapeError);
  CHECK_THROWS_WITH_AS(ag::conv_transpose2d(tape.variable(Array({1, 1, 5, 5})), tape.variable(Array({1, 0, 3, 3}))),
                       doctest::Contains("conv_transpose2d: weight [1, 0, 3, 3] has no output channels"),
                       ag::ShapeError);
  // Empty results of any size are fine.
  CHECK(ag::broadcast_to(tape.variable(Array({0, 1})), {0, std::size_t{1} << 50}).numel() == 0);
}

TEST_CASE("log and sqrt outside their domain follow IEEE 754, documented") {
  ag::Tape tape;
  Var x = tape.variable(Array{{0.0F, -1.0F}});
  Var l = ag::log(x);
  CHECK(std::isinf(l.value()(0, 0)));
  CHECK(l.value()(0, 0) < 0);
  CHECK(std::isnan(l.value()(0, 1)));
  CHECK(std::isnan(ag::sqrt(x).value()(0, 1)));
}

TEST_CASE("stable forms stay finite at extreme inputs") {
  ag::Tape tape;
  Var x = tape.variable(Array{{-1000.0F, 1000.0F}});
  Var t = tape.constant(Array{{1.0F, 0.0F}});
  CHECK(ag::sigmoid(x).value()(0, 0) == 0.0F);
  CHECK(ag::sigmoid(x).value()(0, 1) == 1.0F);
  CHECK(ag::softplus(x).value()(0, 1) == 1000.0F);
  CHECK(ag::log_sigmoid(x).value()(0, 0) == -1000.0F);
  Var bce = ag::bce_with_logits(x, t, ag::Reduction::sum);  // both maximally wrong: 2000
  CHECK(bce.item() == 2000.0F);
  tape.backward(bce);
  CHECK(x.grad()(0, 0) == -1.0F);
  CHECK(x.grad()(0, 1) == 1.0F);
}

TEST_CASE("a handle taken before reset is refused with a clear error") {
  ag::Tape tape;
  Var x = tape.variable(Array{{1.0F}});
  tape.reset();
  CHECK_FALSE(x.valid());
  CHECK_THROWS_WITH_AS(x.value(), doctest::Contains("reset"), std::logic_error);
  Var y = tape.variable(Array{{2.0F}});
  CHECK_THROWS_AS(ag::exp(x), std::logic_error);
  CHECK(y.item() == 2.0F);
}

TEST_CASE("a chain of 1,000,000 ops runs forward and backward without recursion") {
  ag::Tape tape;
  Var x = tape.variable(Array{{1.0F}});
  Var y = x;
  for (int i = 0; i < 1'000'000; ++i) y = y * 1.0F;
  CHECK(tape.size() == 1'000'001);
  tape.backward(y);
  CHECK(x.grad()(0, 0) == 1.0F);
}

TEST_CASE("10,000 record/backward/reset steps: the tape's storage stops growing") {
  ag::Tape tape;
  ag::Parameter w(Array({4, 8}));
  ag::Parameter b(Array({1, 4}));
  ag::Rng rng(1);
  rng.fill_uniform(w.value, -1.0F, 1.0F);
  Array x({16, 8});
  std::size_t bytes_after_warmup = 0, capacity_after_warmup = 0;
  for (int step = 0; step < 10'000; ++step) {
    rng.fill_uniform(x, -1.0F, 1.0F);
    Var h = ag::relu(ag::linear(tape.constant(x), tape.parameter(w), tape.parameter(b)));
    Var loss = ag::mean(ag::square(h));
    tape.backward(loss);
    tape.reset();
    if (step == 10) {
      bytes_after_warmup = tape.bytes_reserved();
      capacity_after_warmup = tape.capacity();
    }
  }
  CHECK(bytes_after_warmup > 0);
  CHECK(tape.bytes_reserved() == bytes_after_warmup);
  CHECK(tape.capacity() == capacity_after_warmup);
  CHECK(tape.capacity() == 7);  // constant, 2 parameters, linear, relu, square, mean
}

TEST_CASE("print lists one line per node; to_dot draws the graph") {
  ag::Tape tape;
  Var x = tape.variable(Array({2, 3}));
  Var y = ag::sum(ag::relu(x), 1, /*keepdim=*/true);
  (void)y;
  std::ostringstream out;
  tape.print(out);
  const std::string text = out.str();
  CHECK(text.find("%0") != std::string::npos);
  CHECK(text.find("relu(%0)") != std::string::npos);
  CHECK(text.find("sum(%1)") != std::string::npos);
  CHECK(text.find("[2, 1]") != std::string::npos);
  CHECK(std::count(text.begin(), text.end(), '\n') == 3);
  const std::string dot = tape.to_dot();
  CHECK(dot.rfind("digraph", 0) == 0);
  CHECK(dot.find("n0 -> n1") != std::string::npos);
  CHECK(dot.find("n1 -> n2") != std::string::npos);
}

TEST_CASE("print and to_dot show values and gradients when asked, abbreviating large arrays") {
  ag::Tape tape;
  Var x = tape.variable(Array{{1.0F, -2.0F}});
  Var big = tape.constant(xt::ones<float>({3, 4}));
  Var y = ag::sum(x * x) + ag::sum(big);
  tape.backward(y);
  std::ostringstream out;
  tape.print(out, {.values = true, .grads = true, .max_elements = 4});
  const std::string text = out.str();
  CHECK(text.find("value {{1, -2}}  grad {{2, -4}}") != std::string::npos);
  CHECK(text.find("value {1, 1, 1, 1, ...} (12 values)") != std::string::npos);
  CHECK(text.find("grad {{1}}") != std::string::npos);        // the root's seed
  std::ostringstream plain;
  tape.print(plain);
  CHECK(plain.str().find("value") == std::string::npos);
  const std::string dot = tape.to_dot({.grads = true});
  CHECK(dot.find("\\ngrad {{2, -4}}") != std::string::npos);
  CHECK(dot.find("value") == std::string::npos);
}

TEST_CASE("grad() of a node the latest backward did not reach is an error, never stale data") {
  ag::Tape tape;
  Var a = tape.variable(Array{{1.0F, 2.0F}});
  tape.backward(ag::sum(a * a));
  CHECK(a.has_grad());
  tape.reset();
  // The same node slot is reused for a [1, 1] leaf that nothing depends on.
  Var unused = tape.variable(Array{{5.0F}});
  CHECK_FALSE(unused.has_grad());  // not even before the next backward: the slot's pass is not its
  Var used = tape.variable(Array{{3.0F}});
  tape.backward(used * 2.0F);
  CHECK(used.grad()(0, 0) == 2.0F);
  CHECK_FALSE(unused.has_grad());
  CHECK_THROWS_WITH_AS(unused.grad(), doctest::Contains("no gradient reached"), std::logic_error);
}

TEST_CASE("grad() before any backward is an error") {
  ag::Tape tape;
  Var a = tape.variable(Array{{1.0F, 2.0F}});
  Var b = ag::exp(a);
  CHECK_FALSE(a.has_grad());
  CHECK_FALSE(b.has_grad());
  CHECK_THROWS_WITH_AS(a.grad(), doctest::Contains("no gradient reached"), std::logic_error);
}

TEST_CASE("gradcheck gives an input the output ignores a zero gradient") {
  auto r = ag::gradcheck("ignores its second input", [](ag::Tape&, const std::vector<Var>& x) {
    return ag::exp(x[0]);
  }, {Array{{0.5F, 1.0F}}, Array{{2.0F}}});
  INFO(r.message());
  CHECK(r.ok);
}

namespace {

// Gradients of every leaf of a graph in which each op that overwrites fresh gradients (linear,
// relu, bce_with_logits) meets the cases: an input reached first by it, an input it shares with
// an op that adds (sigmoid), an input that occurs twice among its own inputs (linear(h, h),
// bce(l, l)), and leaves that are plain variables (x, w, b, t: not parameters).
std::vector<Array> fresh_case_grads(ag::Tape& tape, float offset) {
  tape.reset();
  Var x = tape.variable(Array{{0.5F + offset, -1.0F, 2.0F}, {1.5F, 0.25F - offset, -0.75F}, {-0.4F, 0.8F, 1.1F}});
  Var w = tape.variable(Array{{0.3F, -0.2F, 0.1F}, {0.7F, 0.4F, -0.6F}, {-0.5F, 0.9F, 0.2F + offset}});
  Var b = tape.variable(Array{{0.1F, -0.3F, 0.05F}});
  Var t = tape.variable(Array{{0.2F, 0.9F, 0.5F}, {1.0F, 0.0F, 0.4F}, {0.6F, 0.3F, 0.7F}});
  Var h = ag::relu(ag::linear(x, w, b));
  Var l = ag::linear(h, h) + ag::sigmoid(h);
  Var loss = ag::bce_with_logits(l, t, ag::Reduction::sum) + ag::bce_with_logits(l, l, ag::Reduction::mean);
  tape.backward(loss);
  return {x.grad(), w.grad(), b.grad(), t.grad()};
}

}  // namespace

TEST_CASE("gradient buffers written fresh (not zeroed first) hold exactly the accumulated gradients") {
  // On a reused tape every buffer still holds the previous pass's gradients: an op that added
  // to a gradient marked fresh, or wrote over one that was not, would give other numbers than
  // a new tape, whose buffers start at zero. Also checked against finite differences, so the
  // rule is right and not only repeatable.
  ag::Tape reused;
  fresh_case_grads(reused, 0.1F);
  const std::vector<Array> again = fresh_case_grads(reused, 0.0F);
  ag::Tape fresh;
  const std::vector<Array> once = fresh_case_grads(fresh, 0.0F);
  REQUIRE(again.size() == once.size());
  for (std::size_t i = 0; i < once.size(); ++i) CHECK(again[i] == once[i]);
  const auto f = [](ag::Tape&, const std::vector<Var>& in) {
    Var h = ag::relu(ag::linear(in[0], in[1], in[2]));
    Var l = ag::linear(h, h) + ag::sigmoid(h);
    return ag::bce_with_logits(l, in[3], ag::Reduction::sum) + ag::bce_with_logits(l, l, ag::Reduction::mean);
  };
  const ag::GradcheckResult r = ag::gradcheck(
      "fresh gradients", f,
      {Array{{0.5F, -1.0F, 2.0F}, {1.5F, 0.25F, -0.75F}, {-0.4F, 0.8F, 1.1F}},
          Array{{0.3F, -0.2F, 0.1F}, {0.7F, 0.4F, -0.6F}, {-0.5F, 0.9F, 0.2F}}, Array{{0.1F, -0.3F, 0.05F}},
          Array{{0.2F, 0.9F, 0.5F}, {1.0F, 0.0F, 0.4F}, {0.6F, 0.3F, 0.7F}}});
  CHECK_MESSAGE(r.ok, r.message());
}
