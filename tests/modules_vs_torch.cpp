// modules_vs_torch: the C++ side of tests/check_modules_torch.py.
//
//   modules_vs_torch DIR
//
// For each module: loads the state dict PyTorch wrote (DIR/<name>.state.safetensors), runs
// the input DIR/inputs.safetensors holds for it ("<name>.x") forward and the given upstream
// gradient ("<name>.seed") backward, writes the output and the gradients of the input and of
// every parameter to DIR/<name>.ours.safetensors, and saves the module's state dict after the
// step (BatchNorm's running statistics moved) to DIR/<name>.after.safetensors for PyTorch to load.
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "autograd/autograd.hpp"
#include "nn/checkpoint.hpp"
#include "nn/nn.hpp"
#include "read_tensor.hpp"

namespace {

struct Case {
  std::string name;
  std::function<std::unique_ptr<nn::Module>(ag::Rng&)> make;
  bool training = true;
  bool integer_input = false;  // indices (Embedding): a constant, no gradient
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: modules_vs_torch DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  ag::Rng rng(7);
  const std::vector<Case> cases = {
      {"layer_norm", [](ag::Rng&) { return std::make_unique<nn::LayerNorm>(5); }},
      {"batch_norm_train", [](ag::Rng&) { return std::make_unique<nn::BatchNorm1d>(5); }},
      {"batch_norm_eval", [](ag::Rng&) { return std::make_unique<nn::BatchNorm1d>(5); }, false},
      {"layer_norm_last_two", [](ag::Rng&) { return std::make_unique<nn::LayerNorm>(std::vector<std::size_t>{3, 4}); }},
      {"batch_norm_sequence_train", [](ag::Rng&) { return std::make_unique<nn::BatchNorm1d>(3); }},
      {"batch_norm_sequence_eval", [](ag::Rng&) { return std::make_unique<nn::BatchNorm1d>(3); }, false},
      {"embedding", [](ag::Rng& r) { return std::make_unique<nn::Embedding>(6, 3, r); }, true, true},
      {"leaky_relu", [](ag::Rng&) { return std::make_unique<nn::LeakyReLU>(0.1F); }},
      {"gelu", [](ag::Rng&) { return std::make_unique<nn::GELU>(); }},
      {"silu", [](ag::Rng&) { return std::make_unique<nn::SiLU>(); }},
      {"flatten", [](ag::Rng&) { return std::make_unique<nn::Flatten>(); }},
      {"unflatten", [](ag::Rng&) { return std::make_unique<nn::Unflatten>(1, ag::Shape{2, 2}); }},
      {"identity", [](ag::Rng&) { return std::make_unique<nn::Identity>(); }},
      {"dropout_eval", [](ag::Rng& r) { return std::make_unique<nn::Dropout>(0.5F, r); }, false},
      {"conv2d", [](ag::Rng& r) { return std::make_unique<nn::Conv2d>(3, 4, ag::Size2{3, 2}, r, ag::Conv2dOptions{.stride = 2, .padding = 1}); }},
      {"conv2d_no_bias", [](ag::Rng& r) { return std::make_unique<nn::Conv2d>(2, 3, 3, r, ag::Conv2dOptions{.dilation = 2}, false); }},
      {"conv_transpose2d", [](ag::Rng& r) {
         return std::make_unique<nn::ConvTranspose2d>(3, 2, 4, r, ag::ConvTranspose2dOptions{.stride = 2, .padding = 1});
       }},
      {"max_pool2d", [](ag::Rng&) { return std::make_unique<nn::MaxPool2d>(2); }},
      {"avg_pool2d", [](ag::Rng&) { return std::make_unique<nn::AvgPool2d>(3, 2, 1); }},
      {"upsample", [](ag::Rng&) { return std::make_unique<nn::Upsample>(2); }},
  };
  try {
    const nn::SafetensorsFile inputs = nn::SafetensorsFile::load(dir + "/inputs.safetensors");
    for (const Case& c : cases) {
      std::unique_ptr<nn::Module> m = c.make(rng);
      m->train(c.training);
      if (!m->state_dict().empty())
        nn::load_module(nn::SafetensorsFile::load(dir + "/" + c.name + ".state.safetensors"), *m);
      ag::Tape tape;
      const ag::Array x_value = read_tensor(inputs, c.name + ".x");
      ag::Var x = c.integer_input ? tape.constant(x_value) : tape.variable(x_value);
      ag::Var y = (*m)(x);
      tape.backward(y, read_tensor(inputs, c.name + ".seed"));
      std::vector<ag::Array> keep;
      keep.reserve(16);
      std::vector<nn::TensorEntry> entries;
      auto add = [&](const std::string& name, const ag::Array& a) {
        keep.push_back(a);
        entries.emplace_back(name, std::vector<std::size_t>(a.shape().begin(), a.shape().end()), keep.back());
      };
      add("out", y.value());
      if (!c.integer_input) add("grad.x", x.grad());
      for (const nn::NamedParameter& p : m->named_parameters()) add("grad." + p.name, p.parameter->grad);
      nn::save_safetensors(dir + "/" + c.name + ".ours.safetensors", entries);
      nn::save_module(dir + "/" + c.name + ".after.safetensors", *m, {});
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "modules_vs_torch: %s\n", e.what());
    return 1;
  }
  return 0;
}
