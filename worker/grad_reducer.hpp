// GradientReducer: bucketed gradient all-reduce overlapped with backward.
//
// Each parameter's .grad is a view into a flat per-bucket buffer, so autograd accumulates
// straight into the bucket (no copies). Buckets are filled in reverse parameter order (the
// order backward produces gradients) up to `bucket_bytes`. A post-hook on every parameter's
// AccumulateGrad node counts ready gradients; when a bucket is complete its all-reduce starts
// at once, while backward continues. Buckets start strictly in index order on every rank, as
// collectives must be issued in the same order everywhere. finish() starts what is left
// (parameters that got no gradient this step contribute zeros), waits, and averages.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/time.hpp"
#include "worker/comm_group.hpp"

namespace harvest {

struct ReduceTimings {
  double comm_wait_s = 0;   // time finish() blocked on all-reduces (communication not hidden)
  double backward_s = 0;    // from prepare() to finish(): backward incl. the overlapped part
  int buckets = 0;
  int buckets_started_in_backward = 0;  // overlap: started before finish() was called
};

class GradientReducer {
 public:
  GradientReducer(std::vector<std::pair<std::string, at::Tensor>> named_params, CommGroup& group,
                  double bucket_mb);
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // Zeroes every gradient (call before the first micro-step of an optimizer step).
  void zero_grad();
  // Call before each backward. sync=false (gradient accumulation micro-steps) only accumulates.
  void prepare(bool sync);
  // After the last backward of the step: all-reduce the rest, wait (deadline), average.
  ReduceTimings finish(const Deadline& deadline);

  int bucket_count() const { return static_cast<int>(buckets_.size()); }
  // Parameter names per bucket, for diagnostics and tests.
  std::vector<std::vector<std::string>> bucket_layout() const;

 private:
  struct Bucket {
    at::Tensor flat;
    std::vector<size_t> params;  // indices into params_
    size_t ready = 0;
    std::unique_ptr<PendingOp> pending;
  };
  struct Param {
    std::string name;
    at::Tensor tensor;
    size_t bucket = 0;
    bool seen = false;  // gradient arrived this step
  };
  void on_grad_ready(size_t param_index);  // called from autograd post-hooks
  void start_ready_buckets_locked();

  CommGroup& group_;
  std::vector<Param> params_;
  std::vector<Bucket> buckets_;
  // The AccumulateGrad nodes and our hook keys on them; hooks are removed in the destructor.
  std::vector<std::pair<std::shared_ptr<torch::autograd::Node>, uintptr_t>> hooks_;
  std::mutex mutex_;
  bool syncing_ = false;
  size_t next_bucket_ = 0;
  int started_in_backward_ = 0;
  Stopwatch backward_clock_;
};

}  // namespace harvest
