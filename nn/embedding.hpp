// Embedding: a table of num_embeddings vectors, looked up by index, as torch.nn.Embedding
// (weight [num, dim], drawn from N(0, 1)). The gradient adds up over repeated indices.
//
//   nn::Embedding classes(10, 16, rng);
//   ag::Var e = classes(labels);   // labels [B] of whole numbers -> [B, 16]; [B, T] -> [B, T, 16]
#pragma once

#include <cstddef>
#include <string>

#include "autograd/random.hpp"
#include "nn/module.hpp"

namespace nn {

class Embedding : public Module {
 public:
  Embedding(std::size_t num_embeddings, std::size_t embedding_dim, ag::Rng& rng);
  ag::Var forward(ag::Var indices) override;
  std::string describe() const override;

  ag::Parameter& weight;  // [num_embeddings, embedding_dim]
};

}  // namespace nn
