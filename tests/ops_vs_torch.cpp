// ops_vs_torch: the C++ side of tests/check_ops_torch.py.
//
//   ops_vs_torch IN OUT
//
// IN (written by the script) holds the inputs of each case and, as "<case>.seed", the
// upstream gradient to send back from its output. OUT receives "<case>.out" and
// "<case>.grad<k>" for each input k; the script computes the same with PyTorch and compares.
#include <cstdio>
#include <exception>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "autograd/autograd.hpp"
#include "nn/safetensors.hpp"
#include "read_tensor.hpp"

namespace {

using Inputs = const std::vector<ag::Var>&;

struct Case {
  std::vector<std::string> inputs;       // names in IN; those starting with "i:" are integer-valued constants
  std::function<ag::Var(ag::Tape&, Inputs)> f;
};

std::map<std::string, Case> cases() {
  using namespace ag;
  std::map<std::string, Case> c;
  c["softmax"] = {{"x"}, [](Tape&, Inputs x) { return softmax(x[0], 1); }};
  c["log_softmax0"] = {{"x"}, [](Tape&, Inputs x) { return log_softmax(x[0], 0); }};
  c["cross_entropy"] = {{"x", "i:targets"}, [](Tape&, Inputs x) { return cross_entropy(x[0], x[1]); }};
  c["cross_entropy_smooth_sum"] = {{"x", "i:targets"},
                                   [](Tape&, Inputs x) { return cross_entropy(x[0], x[1], Reduction::sum, 0.2F); }};
  c["cross_entropy_none"] = {{"x", "i:targets"},
                             [](Tape&, Inputs x) { return cross_entropy(x[0], x[1], Reduction::none); }};
  c["nll_loss"] = {{"x", "i:targets"}, [](Tape&, Inputs x) { return nll_loss(log_softmax(x[0]), x[1]); }};
  c["pow"] = {{"x"}, [](Tape&, Inputs x) { return pow(x[0], 3.0F); }};
  c["abs"] = {{"x"}, [](Tape&, Inputs x) { return abs(x[0]); }};
  c["clamp"] = {{"x"}, [](Tape&, Inputs x) { return clamp(x[0], -0.5F, 0.75F); }};
  c["minimum"] = {{"x", "row"}, [](Tape&, Inputs x) { return minimum(x[0], x[1]); }};
  c["maximum"] = {{"x", "row"}, [](Tape&, Inputs x) { return maximum(x[0], x[1]); }};
  c["where"] = {{"i:mask", "x", "row"}, [](Tape&, Inputs x) { return where(x[0], x[1], x[2]); }};
  c["leaky_relu"] = {{"x"}, [](Tape&, Inputs x) { return leaky_relu(x[0], 0.2F); }};
  c["elu"] = {{"x"}, [](Tape&, Inputs x) { return elu(x[0], 0.7F); }};
  c["gelu"] = {{"x"}, [](Tape&, Inputs x) { return gelu(x[0]); }};
  c["silu"] = {{"x"}, [](Tape&, Inputs x) { return silu(x[0]); }};
  c["layer_norm"] = {{"x", "w5", "b5"}, [](Tape&, Inputs x) { return layer_norm(x[0], x[1], x[2]); }};
  c["layer_norm_last_two"] = {{"x3", "w34", "b34"},
                              [](Tape&, Inputs x) { return layer_norm(x[0], x[1], x[2], 1e-5F, 2); }};
  c["batch_norm_sequence"] = {{"x3", "w3", "b3"}, [](Tape&, Inputs x) {
    Array mean = xt::zeros<float>({3}), var = xt::ones<float>({3});
    return batch_norm(x[0], mean, var, x[1], x[2], true);
  }};
  c["cross_entropy_per_position"] = {{"x3", "i:targets3"}, [](Tape&, Inputs x) { return cross_entropy(x[0], x[1]); }};
  c["cross_entropy_per_position_none"] = {
      {"x3", "i:targets3"}, [](Tape&, Inputs x) { return cross_entropy(x[0], x[1], Reduction::none, 0.1F); }};
  c["nll_loss_per_position"] = {{"x3", "i:targets3"},
                                [](Tape&, Inputs x) { return nll_loss(log_softmax(x[0], 1), x[1], Reduction::sum); }};
  c["batch_norm"] = {{"x", "w5", "b5"}, [](Tape&, Inputs x) {
    Array mean({5}), var = xt::ones<float>({5});
    return batch_norm(x[0], mean, var, x[1], x[2], true);
  }};
  c["sum_02"] = {{"x3"}, [](Tape&, Inputs x) { return sum(x[0], {0, 2}); }};
  c["mean_1_keepdim"] = {{"x3"}, [](Tape&, Inputs x) { return mean(x[0], 1, true); }};
  c["max_2"] = {{"x3"}, [](Tape&, Inputs x) { return max(x[0], 2); }};
  c["min_1_keepdim"] = {{"x3"}, [](Tape&, Inputs x) { return min(x[0], 1, true); }};
  c["var_02"] = {{"x3"}, [](Tape&, Inputs x) { return var(x[0], {0, 2}); }};
  c["std_1_population"] = {{"x3"}, [](Tape&, Inputs x) { return ag::std(x[0], 1, false, 0); }};
  c["log1p"] = {{"x"}, [](Tape&, Inputs x) { return log1p(abs(x[0])); }};
  c["expm1"] = {{"x"}, [](Tape&, Inputs x) { return expm1(x[0]); }};
  c["rsqrt"] = {{"x"}, [](Tape&, Inputs x) { return rsqrt(abs(x[0]) + 0.5F); }};
  c["reciprocal"] = {{"x"}, [](Tape&, Inputs x) { return reciprocal(x[0]); }};
  c["sin_cos"] = {{"x"}, [](Tape&, Inputs x) { return sin(x[0]) * cos(x[0] * 3.0F); }};
  c["logsumexp_1"] = {{"x3"}, [](Tape&, Inputs x) { return logsumexp(x[0], 1); }};
  c["permute"] = {{"x3"}, [](Tape&, Inputs x) { return permute(x[0], {2, 0, 1}); }};
  c["broadcast_add"] = {{"x3", "col"}, [](Tape&, Inputs x) { return x[0] + x[1]; }};
  c["bmm"] = {{"x3", "y3"}, [](Tape&, Inputs x) { return matmul(x[0], x[1]); }};
  c["gather"] = {{"x", "i:index"}, [](Tape&, Inputs x) { return gather(x[0], 1, x[1]); }};
  c["index_select"] = {{"x", "i:rows"}, [](Tape&, Inputs x) { return index_select(x[0], 0, x[1]); }};
  c["concat"] = {{"x", "x"}, [](Tape&, Inputs x) { return concat({x[0], x[1]}, 0); }};
  c["conv2d"] = {{"img", "cw", "cb"}, [](Tape&, Inputs x) { return conv2d(x[0], x[1], x[2]); }};
  c["conv2d_s2_p1"] = {{"img", "cw", "cb"},
                       [](Tape&, Inputs x) { return conv2d(x[0], x[1], x[2], {.stride = 2, .padding = 1}); }};
  c["conv2d_dilation"] = {{"img", "cw"}, [](Tape&, Inputs x) {
    return conv2d(x[0], x[1], {.stride = {1, 2}, .padding = {2, 1}, .dilation = 2});
  }};
  c["conv_transpose2d"] = {{"img", "ctw", "ctb"}, [](Tape&, Inputs x) { return conv_transpose2d(x[0], x[1], x[2]); }};
  c["conv_transpose2d_s2_p1"] = {{"img", "ctw", "ctb"}, [](Tape&, Inputs x) {
    return conv_transpose2d(x[0], x[1], x[2], {.stride = 2, .padding = 1});
  }};
  c["conv_transpose2d_output_padding"] = {{"img", "ctw"}, [](Tape&, Inputs x) {
    return conv_transpose2d(x[0], x[1], {.stride = {2, 3}, .padding = {0, 1}, .output_padding = {1, 2}, .dilation = 1});
  }};
  c["conv2d_wide"] = {{"img", "cw_wide", "cb_wide"},
                      [](Tape&, Inputs x) { return conv2d(x[0], x[1], x[2], {.stride = 2, .padding = 1}); }};
  c["conv_transpose2d_wide"] = {{"img_wide", "ctw_wide", "ctb"}, [](Tape&, Inputs x) {
    return conv_transpose2d(x[0], x[1], x[2], {.stride = 2, .padding = 1, .output_padding = 1});
  }};
  c["conv2d_lanes_relu"] = {{"img_lanes", "cw_lanes", "cb_lanes"}, [](Tape&, Inputs x) {
    return conv2d(x[0], x[1], x[2], {.stride = 2, .padding = 1, .relu = true});
  }};
  c["conv_transpose2d_lanes_relu"] = {{"img_lanes_small", "cw_lanes", "cb_lanes"}, [](Tape&, Inputs x) {
    return conv_transpose2d(x[0], x[1], slice(x[2], 0, 0, 8), {.stride = 2, .padding = 1, .relu = true});
  }};
  c["conv_transpose2d_lanes"] = {{"img_lanes_small", "cw_lanes"}, [](Tape&, Inputs x) {
    return conv_transpose2d(x[0], x[1], {.stride = 2, .padding = 1});
  }};
  c["max_pool2d"] = {{"img"}, [](Tape&, Inputs x) { return max_pool2d(x[0], 2); }};
  c["max_pool2d_3_s2_p1"] = {{"img"}, [](Tape&, Inputs x) { return max_pool2d(x[0], 3, 2, 1); }};
  c["avg_pool2d"] = {{"img"}, [](Tape&, Inputs x) { return avg_pool2d(x[0], {2, 3}); }};
  c["avg_pool2d_3_s2_p1"] = {{"img"}, [](Tape&, Inputs x) { return avg_pool2d(x[0], 3, 2, 1); }};
  c["upsample_nearest2d"] = {{"img"}, [](Tape&, Inputs x) { return upsample_nearest2d(x[0], {2, 3}); }};
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: ops_vs_torch IN OUT\n");
    return 2;
  }
  try {
    const nn::SafetensorsFile in = nn::SafetensorsFile::load(argv[1]);
    std::vector<ag::Array> keep;  // the output arrays, alive until the write
    std::vector<std::pair<std::string, const ag::Array*>> results;
    keep.reserve(256);
    for (const auto& [name, c] : cases()) {
      ag::Tape tape;
      std::vector<ag::Var> vars;
      for (const std::string& input : c.inputs) {
        const bool integral = input.rfind("i:", 0) == 0;
        ag::Array a = read_tensor(in, integral ? input.substr(2) : input);
        vars.push_back(integral ? tape.constant(a) : tape.variable(a));
      }
      ag::Var y = c.f(tape, vars);
      tape.backward(y, read_tensor(in, name + ".seed"));
      keep.push_back(y.value());
      results.emplace_back(name + ".out", &keep.back());
      for (std::size_t k = 0; k < vars.size(); ++k) {
        if (!vars[k].requires_grad()) continue;
        keep.push_back(vars[k].grad());
        results.emplace_back(name + ".grad" + std::to_string(k), &keep.back());
      }
    }
    std::vector<nn::TensorEntry> entries;
    for (const auto& [name, a] : results)
      entries.emplace_back(name, std::vector<std::size_t>(a->shape().begin(), a->shape().end()), *a);
    nn::save_safetensors(argv[2], entries);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ops_vs_torch: %s\n", e.what());
    return 1;
  }
  return 0;
}
