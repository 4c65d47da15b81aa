#include "distributed/gradient_allreduce.hpp"

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include <fmt/format.h>

namespace distributed {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

GradientAllreduce::GradientAllreduce(Communicator& comm, std::vector<ag::Parameter*> params, std::size_t extras,
                                     std::size_t bucket_bytes)
    : comm_(&comm), params_(std::move(params)), extras_(extras),
      bucket_values_(std::max<std::size_t>(1, bucket_bytes / sizeof(float))) {
  const std::size_t n = params_.size();
  offset_.resize(n);
  first_bucket_.resize(n);
  last_bucket_.resize(n);
  std::size_t total = 0;
  for (std::size_t i = n; i-- > 0;) {  // last parameter first: the order a backward sweep finishes them
    const ag::Parameter* p = params_[i];
    if (p == nullptr) throw std::invalid_argument("GradientAllreduce: a null parameter");
    if (!index_.emplace(p, i).second) throw std::invalid_argument("GradientAllreduce: a parameter listed twice");
    offset_[i] = total;
    total += p->numel();
  }
  flat_.resize(total + extras_);
  members_.assign((flat_.size() + bucket_values_ - 1) / bucket_values_, 0);
  for (std::size_t i = 0; i < n; ++i) {
    first_bucket_[i] = offset_[i] / bucket_values_;
    last_bucket_[i] = params_[i]->numel() == 0 ? first_bucket_[i]
                                               : (offset_[i] + params_[i]->numel() - 1) / bucket_values_;
    for (std::size_t b = first_bucket_[i]; b <= last_bucket_[i] && b < members_.size(); ++b) ++members_[b];
  }
  if (extras_ > 0)
    for (std::size_t b = total / bucket_values_; b < members_.size(); ++b) ++members_[b];
  uses_left_.resize(n);
  packed_.resize(n);
  waiting_ = members_;
}

void GradientAllreduce::check_size(std::span<const float> extra, const char* what) const {
  if (extra.size() != extras_)
    throw std::invalid_argument(fmt::format("GradientAllreduce::{}: {} extra values, expected {}", what,
                                            extra.size(), extras_));
}

void GradientAllreduce::begin(float weight) {
  if (tape_ != nullptr) throw std::logic_error("GradientAllreduce: start() twice without finish()");
  weight_ = weight;
  std::fill(packed_.begin(), packed_.end(), false);
  std::fill(uses_left_.begin(), uses_left_.end(), 0);
  waiting_ = members_;
  next_bucket_ = 0;
}

// weight * gradient into the flat buffer; a bucket whose every member is packed is summed.
void GradientAllreduce::pack(std::size_t i) {
  ag::Parameter* p = params_[i];
  p->settle_grad();  // zeros where defer_zero_grad left them owed
  if (p->grad.size() != p->numel())
    throw std::logic_error("GradientAllreduce: a parameter has no gradient of its shape (run backward first)");
  const float* g = p->grad.data();
  float* out = flat_.data() + offset_[i];
  for (std::size_t k = 0; k < p->numel(); ++k) out[k] = weight_ * g[k];
  packed_[i] = true;
  for (std::size_t b = first_bucket_[i]; b <= last_bucket_[i] && b < waiting_.size(); ++b) --waiting_[b];
}

void GradientAllreduce::pack_extras(std::span<const float> extra) {
  const std::size_t begin = flat_.size() - extras_;
  std::copy(extra.begin(), extra.end(), flat_.begin() + static_cast<std::ptrdiff_t>(begin));
  if (extras_ > 0)
    for (std::size_t b = begin / bucket_values_; b < waiting_.size(); ++b) --waiting_[b];
}

// In bucket order only, the same on every rank: MPI matches collectives by their order.
void GradientAllreduce::start_full_buckets(bool blocking) {
  const std::span<float> all(flat_);
  for (; next_bucket_ < waiting_.size() && waiting_[next_bucket_] == 0; ++next_bucket_) {
    const std::size_t begin = next_bucket_ * bucket_values_;
    const std::span<float> bucket = all.subspan(begin, std::min(bucket_values_, all.size() - begin));
    if (blocking) comm_->sum(bucket);
    else comm_->start_sum(bucket);
  }
}

void GradientAllreduce::unpack(std::span<float> extra) {
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const float* in = flat_.data() + offset_[i];
    std::copy(in, in + params_[i]->numel(), params_[i]->grad.data());
  }
  const auto extras = flat_.end() - static_cast<std::ptrdiff_t>(extras_);
  std::copy(extras, flat_.end(), extra.begin());
}

void GradientAllreduce::run(float weight, std::span<float> extra) {
  check_size(extra, "run");
  const auto start = Clock::now();
  begin(weight);
  for (std::size_t i = 0; i < params_.size(); ++i) pack(i);
  pack_extras(extra);
  start_full_buckets(/*blocking=*/true);
  unpack(extra);
  seconds_ += seconds_since(start);
  ++calls_;
}

void GradientAllreduce::start(float weight, ag::Tape* tape) {
  const auto start = Clock::now();
  begin(weight);
  if (tape != nullptr) {
    // Every leaf of a parameter on the tape must be passed before its gradient is final.
    for (std::uint32_t k = 0; k < tape->size(); ++k)
      if (const ag::Parameter* p = tape->node(k).parameter)
        if (auto it = index_.find(p); it != index_.end()) ++uses_left_[it->second];
    tape->set_parameter_hook(&GradientAllreduce::on_swept, this);
    tape_ = tape;
  }
  seconds_ += seconds_since(start);
}

void GradientAllreduce::on_swept(void* self, ag::Parameter& p) {
  auto& a = *static_cast<GradientAllreduce*>(self);
  const auto start = Clock::now();
  auto it = a.index_.find(&p);
  if (it != a.index_.end() && a.uses_left_[it->second] > 0 && --a.uses_left_[it->second] == 0) {
    a.pack(it->second);
    a.start_full_buckets(/*blocking=*/false);
  }
  a.comm_->progress_sums();
  a.seconds_ += seconds_since(start);
}

void GradientAllreduce::finish(std::span<float> extra) {
  check_size(extra, "finish");
  const auto start = Clock::now();
  if (tape_ != nullptr) tape_->set_parameter_hook(nullptr, nullptr);
  tape_ = nullptr;
  for (std::size_t i = 0; i < params_.size(); ++i)
    if (!packed_[i]) pack(i);  // not on the tape, or the sweep did not run
  pack_extras(extra);
  start_full_buckets(/*blocking=*/false);
  comm_->wait_sums();
  unpack(extra);
  seconds_ += seconds_since(start);
  ++calls_;
}

}  // namespace distributed
