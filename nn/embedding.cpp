#include "nn/embedding.hpp"

#include <fmt/format.h>

#include "autograd/ops.hpp"

namespace nn {

static ag::Array normal_table(std::size_t num, std::size_t dim, ag::Rng& rng) {
  ag::Array a({num, dim});
  rng.fill_normal(a);
  return a;
}

Embedding::Embedding(std::size_t num_embeddings, std::size_t embedding_dim, ag::Rng& rng)
    : weight(register_parameter("weight", normal_table(num_embeddings, embedding_dim, rng))) {}

ag::Var Embedding::forward(ag::Var indices) {
  ag::Var table = indices.tape().parameter(weight);
  if (indices.dim() == 1) return ag::index_select(table, 0, indices);
  ag::Shape out = indices.shape();
  out.push_back(weight.value.shape()[1]);
  return ag::reshape(ag::index_select(table, 0, ag::flatten(indices)), out);
}

std::string Embedding::describe() const {
  return fmt::format("Embedding({}, {})", weight.value.shape()[0], weight.value.shape()[1]);
}

}  // namespace nn
