// Each use of randomness draws from its own stream, so that (for instance) evaluating does
// not shift the training noise, and each can be saved and restored on its own. Streams are
// seeded by hashing (seed, stream), so no two coincide for any --seed.
#pragma once

#include <cstdint>

#include "autograd/random.hpp"

namespace tools {

enum Stream : std::uint64_t {
  kInit = 1, kNoise, kShuffle, kEvaluation, kPictures, kIwae, kTestBinarize, kValidation, kCommand
};

inline std::uint64_t stream_seed(std::uint64_t seed, std::uint64_t stream, std::uint64_t index = 0) {
  return ag::splitmix64(ag::splitmix64(ag::splitmix64(seed) ^ stream) ^ index);
}

}  // namespace tools
