// graph_vs_torch: the C++ side of tests/check_graphs_torch.py.
//
//   graph_vs_torch PROGRAM IN OUT
//
// PROGRAM (JSON, written by the script) lists random graphs of ops. A graph is a list of nodes,
// node k making value k: a leaf (a tensor in IN, with or without a gradient) or a step, which
// reads earlier values by index and takes its settings by name:
//   {"graphs": [{"name": "g0", "nodes": [{"tensor": "g0.l0", "grad": true},
//                                        {"op": "sum", "in": [0], "axes": [1], "keepdim": true},
//                                        {"tensor": "g0.l1", "grad": false},
//                                        {"op": "add", "in": [1, 2]}, ...]}]}
// The last node is the graph's output (a step); IN holds "<name>.seed", the gradient sent back from it.
// OUT receives every step's value ("<name>.v<k>", so the script can point at the first step
// that differs) and every leaf's gradient ("<name>.grad<k>").
#include <algorithm>
#include <cstdio>
#include <deque>
#include <exception>
#include <fstream>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "autograd/autograd.hpp"
#include "nn/safetensors.hpp"
#include "read_tensor.hpp"

namespace {

using json = nlohmann::json;
using Args = const std::vector<ag::Var>&;
using Step = std::function<ag::Var(Args, const json&)>;

ag::Reduction reduction(const json& s) {
  const std::string r = s.at("reduction");
  if (r == "none") return ag::Reduction::none;
  if (r == "sum") return ag::Reduction::sum;
  if (r == "mean") return ag::Reduction::mean;
  if (r == "batch_mean") return ag::Reduction::batch_mean;
  throw std::invalid_argument("unknown reduction " + r);
}

ag::Shape shape(const json& s) { return ag::Shape(s.begin(), s.end()); }

// The axes list of a reduction, as ag::Axes (the script draws ranks up to 6).
ag::Axes axes(const json& s) {
  const std::vector<int> a = s.at("axes");
  switch (a.size()) {
    case 1: return {a[0]};
    case 2: return {a[0], a[1]};
    case 3: return {a[0], a[1], a[2]};
    case 4: return {a[0], a[1], a[2], a[3]};
    case 5: return {a[0], a[1], a[2], a[3], a[4]};
    case 6: return {a[0], a[1], a[2], a[3], a[4], a[5]};
    default: throw std::invalid_argument("graph_vs_torch: 1 to 6 axes");
  }
}

ag::Size2 size2(const json& s, const char* key) {
  const std::vector<std::uint32_t> v = s.at(key);
  return {v.at(0), v.at(1)};
}

// One entry per op the script draws; each reads its settings from the step by name.
std::map<std::string, Step> steps() {
  using namespace ag;
  std::map<std::string, Step> t;
  // arithmetic
  t["add"] = [](Args x, const json&) { return x[0] + x[1]; };
  t["sub"] = [](Args x, const json&) { return x[0] - x[1]; };
  t["mul"] = [](Args x, const json&) { return x[0] * x[1]; };
  t["div"] = [](Args x, const json&) { return x[0] / x[1]; };
  t["minimum"] = [](Args x, const json&) { return minimum(x[0], x[1]); };
  t["maximum"] = [](Args x, const json&) { return maximum(x[0], x[1]); };
  t["where"] = [](Args x, const json&) { return where(x[0], x[1], x[2]); };
  t["neg"] = [](Args x, const json&) { return -x[0]; };
  t["add_scalar"] = [](Args x, const json& s) { return x[0] + s.at("c").get<float>(); };
  t["mul_scalar"] = [](Args x, const json& s) { return x[0] * s.at("c").get<float>(); };
  t["rsub_scalar"] = [](Args x, const json& s) { return s.at("c").get<float>() - x[0]; };
  t["rdiv_scalar"] = [](Args x, const json& s) { return s.at("c").get<float>() / x[0]; };
  t["broadcast_to"] = [](Args x, const json& s) { return broadcast_to(x[0], shape(s.at("shape"))); };
  // matmul
  t["matmul"] = [](Args x, const json&) { return matmul(x[0], x[1]); };
  t["linear"] = [](Args x, const json&) { return x.size() == 3 ? linear(x[0], x[1], x[2]) : linear(x[0], x[1]); };
  // math and activations
  t["exp"] = [](Args x, const json&) { return exp(x[0]); };
  t["expm1"] = [](Args x, const json&) { return expm1(x[0]); };
  t["log"] = [](Args x, const json&) { return log(x[0]); };
  t["log1p"] = [](Args x, const json&) { return log1p(x[0]); };
  t["rsqrt"] = [](Args x, const json&) { return rsqrt(x[0]); };
  t["reciprocal"] = [](Args x, const json&) { return reciprocal(x[0]); };
  t["sin"] = [](Args x, const json&) { return sin(x[0]); };
  t["cos"] = [](Args x, const json&) { return cos(x[0]); };
  t["square"] = [](Args x, const json&) { return square(x[0]); };
  t["sqrt"] = [](Args x, const json&) { return sqrt(x[0]); };
  t["pow"] = [](Args x, const json& s) { return pow(x[0], s.at("p").get<float>()); };
  t["abs"] = [](Args x, const json&) { return abs(x[0]); };
  t["clamp"] = [](Args x, const json& s) { return clamp(x[0], s.at("lo").get<float>(), s.at("hi").get<float>()); };
  t["relu"] = [](Args x, const json&) { return relu(x[0]); };
  t["sigmoid"] = [](Args x, const json&) { return sigmoid(x[0]); };
  t["tanh"] = [](Args x, const json&) { return tanh(x[0]); };
  t["softplus"] = [](Args x, const json&) { return softplus(x[0]); };
  t["log_sigmoid"] = [](Args x, const json&) { return log_sigmoid(x[0]); };
  t["leaky_relu"] = [](Args x, const json& s) { return leaky_relu(x[0], s.at("slope").get<float>()); };
  t["elu"] = [](Args x, const json& s) { return elu(x[0], s.at("alpha").get<float>()); };
  t["gelu"] = [](Args x, const json&) { return gelu(x[0]); };
  t["silu"] = [](Args x, const json&) { return silu(x[0]); };
  t["softmax"] = [](Args x, const json& s) { return softmax(x[0], s.at("axis").get<int>()); };
  t["log_softmax"] = [](Args x, const json& s) { return log_softmax(x[0], s.at("axis").get<int>()); };
  // reductions
  t["sum_all"] = [](Args x, const json&) { return sum(x[0]); };
  t["mean_all"] = [](Args x, const json&) { return mean(x[0]); };
  t["sum"] = [](Args x, const json& s) { return sum(x[0], axes(s), s.at("keepdim").get<bool>()); };
  t["mean"] = [](Args x, const json& s) { return mean(x[0], axes(s), s.at("keepdim").get<bool>()); };
  t["max"] = [](Args x, const json& s) { return max(x[0], axes(s), s.at("keepdim").get<bool>()); };
  t["min"] = [](Args x, const json& s) { return min(x[0], axes(s), s.at("keepdim").get<bool>()); };
  t["var"] = [](Args x, const json& s) {
    return var(x[0], axes(s), s.at("keepdim").get<bool>(), s.at("correction").get<int>());
  };
  t["std"] = [](Args x, const json& s) {
    return ag::std(x[0], axes(s), s.at("keepdim").get<bool>(), s.at("correction").get<int>());
  };
  t["logsumexp"] = [](Args x, const json& s) { return logsumexp(x[0], axes(s), s.at("keepdim").get<bool>()); };
  // shape
  t["reshape"] = [](Args x, const json& s) { return reshape(x[0], shape(s.at("shape"))); };
  t["flatten"] = [](Args x, const json& s) { return flatten(x[0], s.at("start").get<int>(), s.at("end").get<int>()); };
  t["unsqueeze"] = [](Args x, const json& s) { return unsqueeze(x[0], s.at("axis").get<int>()); };
  t["squeeze"] = [](Args x, const json& s) { return squeeze(x[0], s.at("axis").get<int>()); };
  t["permute"] = [](Args x, const json& s) {
    const std::vector<int> dims = s.at("dims");
    return permute(x[0], std::span<const int>(dims));
  };
  t["transpose"] = [](Args x, const json& s) { return transpose(x[0], s.at("a").get<int>(), s.at("b").get<int>()); };
  t["slice"] = [](Args x, const json& s) {
    return slice(x[0], s.at("axis").get<int>(), s.at("begin").get<std::size_t>(), s.at("end").get<std::size_t>());
  };
  t["concat"] = [](Args x, const json& s) { return concat(std::span<const Var>(x), s.at("axis").get<int>()); };
  t["stack"] = [](Args x, const json& s) { return stack(std::span<const Var>(x), s.at("axis").get<int>()); };
  t["index_select"] = [](Args x, const json& s) { return index_select(x[0], s.at("axis").get<int>(), x[1]); };
  t["gather"] = [](Args x, const json& s) { return gather(x[0], s.at("axis").get<int>(), x[1]); };
  // losses
  t["bce_with_logits"] = [](Args x, const json& s) { return bce_with_logits(x[0], x[1], reduction(s)); };
  t["mse_loss"] = [](Args x, const json& s) { return mse_loss(x[0], x[1], reduction(s)); };
  t["gaussian_nll"] = [](Args x, const json& s) { return gaussian_nll(x[0], x[1], x[2], reduction(s)); };
  t["kl_to_standard_normal"] = [](Args x, const json& s) {
    return kl_to_standard_normal(x[0], x[1], reduction(s));
  };
  t["cross_entropy"] = [](Args x, const json& s) {
    return cross_entropy(x[0], x[1], reduction(s), s.at("smoothing").get<float>());
  };
  t["reparameterize"] = [](Args x, const json&) { return reparameterize(x[0], x[1], x[2].value()); };
  t["layer_norm"] = [](Args x, const json& s) {
    return layer_norm(x[0], x[1], x[2], 1e-5F, s.at("dims").get<std::size_t>());
  };
  t["nll_loss"] = [](Args x, const json& s) { return nll_loss(x[0], x[1], reduction(s)); };
  t["batch_norm"] = [](Args x, const json& s) {
    const std::vector<float> mean = s.at("mean"), var = s.at("var");
    Array running_mean({mean.size()}), running_var({var.size()});
    std::copy(mean.begin(), mean.end(), running_mean.begin());
    std::copy(var.begin(), var.end(), running_var.begin());
    const bool affine = x.size() == 3;
    return batch_norm(x[0], running_mean, running_var, affine ? x[1] : Var(), affine ? x[2] : Var(),
                      s.at("training").get<bool>());
  };
  // the rest
  t["dropout"] = [](Args x, const json& s) {
    Rng rng(1);
    return dropout(x[0], s.at("p").get<float>(), rng, s.at("training").get<bool>());
  };
  t["view"] = [](Args x, const json& s) { return view(x[0], shape(s.at("shape"))); };
  t["one_hot"] = [](Args x, const json& s) { return one_hot(x[0], s.at("classes").get<std::size_t>()); };
  t["argmax"] = [](Args x, const json& s) { return argmax(x[0], s.at("axis").get<int>(), s.at("keepdim").get<bool>()); };
  // convolutions and pooling
  t["conv2d"] = [](Args x, const json& s) {
    const Conv2dOptions o{.stride = size2(s, "stride"), .padding = size2(s, "padding"), .dilation = size2(s, "dilation")};
    return x.size() == 3 ? conv2d(x[0], x[1], x[2], o) : conv2d(x[0], x[1], o);
  };
  t["conv_transpose2d"] = [](Args x, const json& s) {
    const ConvTranspose2dOptions o{.stride = size2(s, "stride"),
                                   .padding = size2(s, "padding"),
                                   .output_padding = size2(s, "output_padding"),
                                   .dilation = size2(s, "dilation")};
    return x.size() == 3 ? conv_transpose2d(x[0], x[1], x[2], o) : conv_transpose2d(x[0], x[1], o);
  };
  t["max_pool2d"] = [](Args x, const json& s) {
    return max_pool2d(x[0], size2(s, "kernel"), size2(s, "stride"), size2(s, "padding"));
  };
  t["avg_pool2d"] = [](Args x, const json& s) {
    return avg_pool2d(x[0], size2(s, "kernel"), size2(s, "stride"), size2(s, "padding"));
  };
  t["upsample_nearest2d"] = [](Args x, const json& s) { return upsample_nearest2d(x[0], size2(s, "scale")); };
  return t;
}

// The arrays written stay in `keep` (a deque: adding one moves none) until the file is saved.
void add_result(std::vector<nn::TensorEntry>& out, std::deque<ag::Array>& keep, const std::string& name,
                const ag::Array& a) {
  keep.push_back(a);
  out.emplace_back(name, std::vector<std::size_t>(a.shape().begin(), a.shape().end()), keep.back().data(),
                   keep.back().size());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: graph_vs_torch PROGRAM IN OUT\n");
    return 2;
  }
  try {
    std::ifstream program_file(argv[1]);
    const json program = json::parse(program_file);
    const nn::SafetensorsFile in = nn::SafetensorsFile::load(argv[2]);
    const std::map<std::string, Step> table = steps();
    std::deque<ag::Array> keep;
    std::vector<nn::TensorEntry> out;
    for (const json& graph : program.at("graphs")) {
      const std::string name = graph.at("name");
      ag::Tape tape;
      std::vector<ag::Var> values, leaves;
      std::size_t k = 0;
      for (const json& step : graph.at("nodes")) {
        if (step.contains("tensor")) {
          values.push_back(tape.variable(read_tensor(in, step.at("tensor")), step.at("grad").get<bool>()));
          leaves.push_back(values.back());
          continue;
        }
        const std::string op = step.at("op");
        std::vector<ag::Var> args;
        for (const std::size_t i : step.at("in").get<std::vector<std::size_t>>()) args.push_back(values.at(i));
        const auto entry = table.find(op);
        if (entry == table.end()) throw std::invalid_argument("unknown op " + op);
        try {
          values.push_back(entry->second(args, step));
        } catch (const std::exception& e) {
          throw std::runtime_error(name + " step " + std::to_string(k) + " (" + op + "): " + e.what());
        }
        add_result(out, keep, name + ".v" + std::to_string(k++), values.back().value());
      }
      tape.backward(values.back(), read_tensor(in, name + ".seed"));
      for (std::size_t i = 0; i < leaves.size(); ++i)
        if (leaves[i].requires_grad())
          add_result(out, keep, name + ".grad" + std::to_string(i),
                     leaves[i].has_grad() ? leaves[i].grad() : ag::Array(xt::zeros<float>(leaves[i].shape())));
    }
    nn::save_safetensors(argv[3], out);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "graph_vs_torch: %s\n", e.what());
    return 1;
  }
  return 0;
}
