// The worked example of docs/autograd.md. Every number in that document is printed here, and
// a test (tests/check_walkthrough.py) fails when the two disagree, so the text cannot drift
// from the code.
//
//   walkthrough            the example, in sections headed "## name"; exits 1 if backward's
//                          gradients differ from the ones worked out by hand
//   walkthrough --vae-dot  the tape of one VAE training step in Graphviz DOT
//                          (docs/images/vae-step.dot; `dot -Tpng` draws docs/images/vae-step.png)
#include <cstdio>
#include <iostream>
#include <string_view>

#include <fmt/format.h>

#include "autograd/autograd.hpp"
#include "models/models.hpp"

namespace {

void section(const char* name) { std::cout << "## " << name << '\n'; }

// Tape::backward's sweep, written out so that each step can be shown: visit the nodes from
// the root down to the first and let each one's backward rule add into its inputs' gradients.
// (Tape::backward zeroes a gradient only when something first flows into it, and skips nodes
// the root does not depend on; here every gradient is zeroed up front, which gives the same
// numbers for this small tape.)
void sweep_and_show(ag::Tape& tape, ag::Var root) {
  for (std::uint32_t i = 0; i <= root.index(); ++i) {
    ag::Node& n = tape.node(i);
    if (n.requires_grad) ag::zero_as(n.grad(), ag::shape_of(n.value()));
  }
  tape.node(root).grad().fill(1.0F);
  std::cout << "seed   d y / d %" << root.index() << " = 1\n";
  for (std::uint32_t i = root.index() + 1; i-- > 0;) {
    ag::Node& n = tape.node(i);
    if (n.backward == nullptr) continue;
    std::cout << fmt::format("visit  %{} {}: its grad is {}\n", i, n.op, ag::to_string(n.grad()));
    n.backward(tape, n);
    for (std::uint8_t k = 0; k < n.arity; ++k) {
      const ag::Node& in = tape.node(n.inputs[k]);
      if (!in.requires_grad) continue;
      std::cout << fmt::format("         %{} grad is now {}\n", n.inputs[k], ag::to_string(in.grad()));
    }
  }
}

// Returns whether backward's gradients are the ones worked out by hand.
bool worked_example() {
  ag::Tape tape;
  ag::Var x = tape.variable(ag::Array{{1.0F, 2.0F}});
  ag::Var w = tape.variable(ag::Array{{3.0F}});
  ag::Var y = ag::sum(x * w * x);  // y = w (x1^2 + x2^2)

  section("forward");
  tape.print(std::cout, {.values = true});

  section("sweep");
  sweep_and_show(tape, y);

  section("backward");
  tape.backward(y);
  tape.print(std::cout, {.values = true, .grads = true});
  std::cout << fmt::format("by hand: dy/dx = 2 w x = {{{}, {}}}, dy/dw = x1^2 + x2^2 = {}\n",
                           2 * 3 * 1, 2 * 3 * 2, 1 * 1 + 2 * 2);
  return x.grad() == ag::Array{{6.0F, 12.0F}} && w.grad() == ag::Array{{5.0F}};
}

void reparameterization() {
  ag::Tape tape;
  ag::Var mu = tape.variable(ag::Array{{0.5F, -1.0F}});
  ag::Var logvar = tape.variable(ag::Array{{0.0F, 0.0F}});
  const ag::Array eps = {{2.0F, -0.5F}};
  ag::Var z = ag::reparameterize(mu, logvar, eps);
  ag::Var loss = ag::sum(ag::square(z));
  tape.backward(loss);

  section("reparameterize");
  tape.print(std::cout, {.values = true, .grads = true});
  std::cout << fmt::format("eps, kept on node %{}: {}\n", z.index(),
                           ag::to_string(tape.node(z).saved));
}

void large_arrays() {
  ag::Tape tape;
  ag::Var pixels = tape.constant(xt::arange<float>(0.0F, 1568.0F).reshape({2, 784}) / 1568.0F);
  ag::Var bias = tape.variable(ag::Array{{0.5F}});
  ag::Var total = ag::sum(pixels + bias);
  tape.backward(total);

  section("large");
  tape.print(std::cout, {.values = true, .grads = true, .max_elements = 4});
}

// One training step of the default VAE (784-400-20, batch 128) on random pixels: the loss's
// tape, as drawn in the document.
void record_vae_step(ag::Tape& tape, models::Vae& vae, ag::Rng& rng) {
  ag::Array batch = xt::zeros<float>({128, 784});
  rng.fill_uniform(batch, 0.0F, 1.0F);
  models::VaeLoss loss = vae.loss(tape.constant(batch), rng);
  tape.backward(loss.loss);
}

void topological_order() {
  ag::Rng rng(1);
  models::Vae vae(models::VaeConfig{}, rng);
  ag::Tape tape;
  record_vae_step(tape, vae, rng);
  bool inputs_first = true;
  for (std::uint32_t i = 0; i < tape.size(); ++i)
    for (std::uint8_t k = 0; k < tape.node(i).arity; ++k)
      inputs_first = inputs_first && tape.node(i).inputs[k] < i;

  section("order");
  std::cout << fmt::format("one VAE training step: {} nodes; every input recorded before its "
                           "node: {}\n",
                           tape.size(), inputs_first ? "yes" : "no");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::string_view(argv[1]) == "--vae-dot") {
    ag::Rng rng(1);
    models::Vae vae(models::VaeConfig{}, rng);
    ag::Tape tape;
    record_vae_step(tape, vae, rng);
    std::cout << tape.to_dot();
    return 0;
  }
  if (argc != 1) {
    std::fprintf(stderr, "usage: walkthrough [--vae-dot]\n");
    return 2;
  }
  const bool as_by_hand = worked_example();
  reparameterization();
  large_arrays();
  topological_order();
  if (!as_by_hand) std::fprintf(stderr, "walkthrough: backward disagrees with the hand computation\n");
  return as_by_hand ? 0 : 1;
}
