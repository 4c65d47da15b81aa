#include "distributed/gradient_allreduce.hpp"

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include <fmt/format.h>

namespace distributed {

GradientAllreduce::GradientAllreduce(Communicator& comm, std::vector<ag::Parameter*> params, std::size_t extras,
                                     std::size_t bucket_bytes)
    : comm_(&comm), params_(std::move(params)), extras_(extras),
      bucket_values_(std::max<std::size_t>(1, bucket_bytes / sizeof(float))) {
  std::size_t total = extras_;
  for (const ag::Parameter* p : params_) {
    if (p == nullptr) throw std::invalid_argument("GradientAllreduce: a null parameter");
    total += p->numel();
  }
  flat_.resize(total);
}

void GradientAllreduce::run(float weight, std::span<float> extra) {
  if (extra.size() != extras_)
    throw std::invalid_argument(fmt::format("GradientAllreduce::run: {} extra values, expected {}", extra.size(), extras_));
  const auto start = std::chrono::steady_clock::now();
  float* out = flat_.data();
  for (const ag::Parameter* p : params_) {
    if (p->grad.size() != p->numel())
      throw std::logic_error("GradientAllreduce::run: a parameter has no gradient of its shape (run backward first)");
    const float* g = p->grad.data();
    for (std::size_t i = 0; i < p->numel(); ++i) out[i] = weight * g[i];
    out += p->numel();
  }
  std::copy(extra.begin(), extra.end(), out);

  const std::span<float> all(flat_);
  for (std::size_t begin = 0; begin < all.size(); begin += bucket_values_)
    comm_->sum(all.subspan(begin, std::min(bucket_values_, all.size() - begin)));

  const float* in = flat_.data();
  for (ag::Parameter* p : params_) {
    std::copy(in, in + p->numel(), p->grad.data());
    in += p->numel();
  }
  std::copy(in, in + extras_, extra.begin());
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ++calls_;
}

}  // namespace distributed
