// GradientAllreduce: averages the parameter gradients of a data-parallel step across ranks.
//
// Each rank has backpropagated the mean loss of its own shard of the global batch. The
// gradient of the global batch's mean loss is the sum over ranks of weight_r * grad_r with
// weight_r = (rows of rank r) / (rows of the global batch); a rank with no rows (the last
// partial batch may have fewer rows than there are ranks) passes weight 0. The gradients
// travel in a few large messages (buckets of `bucket_bytes` of one flat buffer), not one per
// tensor, and the sum is in rank order (Communicator::sum), so every rank ends the step with
// the same gradients bit for bit. A few extra numbers (the loss, error flags) ride in the
// last bucket, so agreeing on them costs no extra message.
//
//   distributed::GradientAllreduce allreduce(world, model.parameters());
//   ... backward on this rank's rows ...
//   float extra[1] = {loss * weight};
//   allreduce.run(weight, extra);     // gradients averaged; extra[0] is the global loss
//   optimizer.step();
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "autograd/parameter.hpp"
#include "distributed/communicator.hpp"

namespace distributed {

class GradientAllreduce {
 public:
  static constexpr std::size_t kDefaultBucketBytes = std::size_t{1} << 20;  // 1 MiB

  GradientAllreduce(Communicator& comm, std::vector<ag::Parameter*> params, std::size_t extras = 1,
                    std::size_t bucket_bytes = kDefaultBucketBytes);

  /// Every parameter's gradient becomes sum over ranks of weight * grad; every element of
  /// `extra` (of the size given to the constructor) becomes its sum over ranks.
  void run(float weight, std::span<float> extra);

  /// Floats per step (gradients and extras) and messages per step.
  std::size_t values() const { return flat_.size(); }
  std::size_t messages() const { return (flat_.size() + bucket_values_ - 1) / bucket_values_; }
  /// Time spent in run() so far (packing, the messages, unpacking) and its calls.
  double seconds() const { return seconds_; }
  std::size_t calls() const { return calls_; }

 private:
  Communicator* comm_;
  std::vector<ag::Parameter*> params_;
  std::size_t extras_;
  std::size_t bucket_values_;
  std::vector<float> flat_;  // every gradient, then the extras
  double seconds_ = 0;
  std::size_t calls_ = 0;
};

}  // namespace distributed
