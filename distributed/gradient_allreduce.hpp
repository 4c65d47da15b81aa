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
// Two ways to run it, with the same result bit for bit:
//
//   distributed::GradientAllreduce allreduce(world, model.parameters());
//   // blocking: after the backward sweep
//   tape.backward(loss);
//   float extra[1] = {loss_value * weight};
//   allreduce.run(weight, extra);      // gradients averaged; extra[0] is the global loss
//   // overlapped: each bucket's sum starts as soon as the sweep has finished its gradients
//   allreduce.start(weight, &tape);    // after the forward pass
//   tape.backward(loss);
//   allreduce.finish(extra);           // waits for every bucket
//   optimizer.step();
//
// The flat buffer holds the parameters last first (the order in which a backward sweep
// finishes them), then the extras. Buckets are started strictly in that order on every rank
// (MPI matches collectives by order), so a bucket whose parameters are done waits for the
// buckets before it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "autograd/parameter.hpp"
#include "autograd/tape.hpp"
#include "distributed/communicator.hpp"

namespace distributed {

class GradientAllreduce {
 public:
  static constexpr std::size_t kDefaultBucketBytes = std::size_t{1} << 20;  // 1 MiB

  GradientAllreduce(Communicator& comm, std::vector<ag::Parameter*> params, std::size_t extras = 1,
                    std::size_t bucket_bytes = kDefaultBucketBytes);

  /// Blocking, after backward: every parameter's gradient becomes sum over ranks of
  /// weight * grad; every element of `extra` (of the size given to the constructor) becomes
  /// its sum over ranks.
  void run(float weight, std::span<float> extra);

  /// Overlapped: call after the forward pass that recorded the parameters on `tape` (or with
  /// nullptr when this rank has nothing to backpropagate), then run tape.backward, then
  /// finish(). While backward sweeps, each parameter is packed as soon as the sweep has
  /// passed its every use, and each bucket's sum starts as soon as it is full.
  void start(float weight, ag::Tape* tape);
  /// Packs what the sweep did not reach (and `extra`), waits for every bucket and leaves
  /// the sums in the gradients and in `extra`, as run() does.
  void finish(std::span<float> extra);

  /// Floats per step (gradients and extras) and messages per step.
  std::size_t values() const { return flat_.size(); }
  std::size_t messages() const { return waiting_.size(); }
  /// Time the allreduce added to the steps so far (packing, the messages and the waits that
  /// computing did not hide; in the overlapped mode also the time spent in the sweep's
  /// hook), and the number of steps.
  double seconds() const { return seconds_; }
  std::size_t calls() const { return calls_; }

 private:
  static void on_swept(void* self, ag::Parameter& p);
  void begin(float weight);
  void pack(std::size_t param);
  void start_full_buckets(bool blocking);
  void pack_extras(std::span<const float> extra);
  void unpack(std::span<float> extra);
  void check_size(std::span<const float> extra, const char* what) const;

  Communicator* comm_;
  std::vector<ag::Parameter*> params_;
  std::unordered_map<const ag::Parameter*, std::size_t> index_;  // params_[index_[p]] == p
  std::vector<std::size_t> offset_;           // where each parameter's gradient sits in flat_
  std::vector<std::size_t> first_bucket_, last_bucket_;  // the buckets each parameter spans
  std::size_t extras_;
  std::size_t bucket_values_;
  std::vector<float> flat_;                   // every gradient (last parameter first), then the extras
  std::vector<std::uint32_t> members_;        // per bucket: parameters (and extras) it holds

  // One step's progress.
  float weight_ = 0;
  ag::Tape* tape_ = nullptr;
  std::vector<std::uint32_t> uses_left_;  // per parameter: leaves the sweep has yet to pass
  std::vector<bool> packed_;
  std::vector<std::uint32_t> waiting_;    // per bucket: members not packed yet
  std::size_t next_bucket_ = 0;           // the first bucket not started

  double seconds_ = 0;
  std::size_t calls_ = 0;
};

}  // namespace distributed
