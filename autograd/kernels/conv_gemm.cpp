#include "autograd/kernels/conv_gemm.hpp"

#include "autograd/kernels/conv.hpp"
#include "autograd/kernels/gemm_packed.hpp"
#include "autograd/kernels/gemm_panels.hpp"

namespace ag {

bool implicit_gemm(std::size_t m, std::size_t n, std::size_t k) { return gemm_packs_b(m, n) || k >= 128; }

void products_into_images(std::size_t m, std::size_t positions, std::size_t k, const float* packed_w,
                          const float* col, std::size_t count, const float* bias, bool relu, float* images) {
  const std::size_t cols = count * positions;
  for (std::size_t b = 0; b < count; ++b) {
    float* image = images + b * m * positions;
    gemm_prepacked_a(m, positions, k, packed_w, false, col + b * positions, cols, 0.0F, image, positions);
    scatter_channel_major(image, m, positions, 0, 1, bias, false, relu, image);
  }
}

}  // namespace ag
