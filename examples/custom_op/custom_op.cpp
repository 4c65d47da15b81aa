// A custom op: its forward, its backward rule beside it, and a gradcheck that proves the
// rule right. The op is softsign, y = x / (1 + |x|), with dy/dx = 1 / (1 + |x|)^2, and a
// setting (a scale) stored on the node by name, as the built-in ops do.
//
//   custom_op      prints the gradcheck's verdict; exits 1 if the rule disagrees
#include <cmath>
#include <cstdio>

#include "autograd/autograd.hpp"

namespace {

struct SoftsignAttrs {
  float scale;  // y = scale * x / (1 + |x|)
};

// Backward: reads the upstream gradient g = dL/dy and adds dL/dx = g * dy/dx into x's gradient.
void softsign_backward(ag::Tape& tape, const ag::Node& node) {
  ag::Node& x = tape.node(node.inputs[0]);
  if (!x.requires_grad) return;
  const float scale = node.attrs<SoftsignAttrs>().scale;
  const float* in = x.value().data();
  const float* g = node.grad().data();
  float* dx = x.grad().data();
  for (std::size_t i = 0; i < node.value().size(); ++i) {
    const float d = 1.0F + std::abs(in[i]);
    dx[i] += g[i] * scale / (d * d);
  }
}

// Forward: records a node (output shape, backward rule), stores the setting, fills the output.
ag::Var softsign(ag::Var x, float scale = 1.0F) {
  ag::Tape& tape = x.tape();
  ag::Node& out = tape.record("softsign", {x}, x.shape(), softsign_backward);
  out.set_attrs(SoftsignAttrs{scale});
  const float* in = x.value().data();
  float* y = out.own_value.data();
  for (std::size_t i = 0; i < out.own_value.size(); ++i) y[i] = scale * in[i] / (1.0F + std::abs(in[i]));
  return tape.last();
}

}  // namespace

int main() {
  ag::Rng rng(1);
  ag::Array x({3, 4, 5});  // any rank
  rng.fill_uniform(x, -3.0F, 3.0F);
  const ag::GradcheckResult r = ag::gradcheck(
      "softsign", [](ag::Tape&, const std::vector<ag::Var>& in) { return softsign(in[0], 2.5F); }, {x});
  std::printf("%s\n", r.message().c_str());
  // The op composes with the built-in ones like any other.
  ag::Tape tape;
  ag::Var v = tape.variable(x);
  ag::Var loss = ag::mean(ag::square(softsign(v)));
  tape.backward(loss);
  std::printf("mean(softsign(x)^2) = %.6f, d/dx[0] = %.6f\n", loss.item(), v.grad().data()[0]);
  return r.ok ? 0 : 1;
}
