#include "worker/grad_reducer.hpp"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include "core/error.hpp"

namespace harvest {
namespace {

class ReadyHook final : public torch::autograd::FunctionPostHook {
 public:
  explicit ReadyHook(std::function<void()> on_ready) : on_ready_(std::move(on_ready)) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list&) override {
    on_ready_();
    return outputs;
  }

 private:
  std::function<void()> on_ready_;
};

}  // namespace

GradientReducer::GradientReducer(std::vector<std::pair<std::string, at::Tensor>> named_params,
                                 CommGroup& group, double bucket_mb)
    : group_(group) {
  for (auto& [name, tensor] : named_params)
    if (tensor.requires_grad()) params_.push_back(Param{name, tensor});
  HARVEST_REQUIRE(!params_.empty(), Usage, "gradient reducer: no trainable parameters");

  // Reverse order: the last layers' gradients arrive first in backward.
  const auto bucket_bytes = static_cast<int64_t>(bucket_mb * 1024 * 1024);
  int64_t filled = 0;
  for (size_t i = params_.size(); i-- > 0;) {
    const auto& t = params_[i].tensor;
    const int64_t bytes = t.numel() * static_cast<int64_t>(t.element_size());
    const bool same_kind = !buckets_.empty() &&
                           params_[buckets_.back().params.front()].tensor.scalar_type() == t.scalar_type() &&
                           params_[buckets_.back().params.front()].tensor.device() == t.device();
    if (buckets_.empty() || !same_kind || filled + bytes > bucket_bytes) {
      buckets_.emplace_back();
      filled = 0;
    }
    buckets_.back().params.push_back(i);
    params_[i].bucket = buckets_.size() - 1;
    filled += bytes;
  }
  for (auto& bucket : buckets_) {
    int64_t numel = 0;
    for (size_t i : bucket.params) numel += params_[i].tensor.numel();
    const auto& first = params_[bucket.params.front()].tensor;
    bucket.flat = torch::zeros({numel}, first.options().requires_grad(false));
    int64_t offset = 0;
    for (size_t i : bucket.params) {
      auto& t = params_[i].tensor;
      t.mutable_grad() = bucket.flat.narrow(0, offset, t.numel()).view(t.sizes());
      offset += t.numel();
    }
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    auto accumulator = torch::autograd::impl::grad_accumulator(params_[i].tensor);
    HARVEST_ASSERT(accumulator, "parameter ", params_[i].name, " has no gradient accumulator");
    const auto key =
        accumulator->add_post_hook(std::make_unique<ReadyHook>([this, i] { on_grad_ready(i); }));
    hooks_.emplace_back(std::move(accumulator), key);
  }
}

GradientReducer::~GradientReducer() {
  for (auto& [node, key] : hooks_) node->del_post_hook(key);
}

void GradientReducer::zero_grad() {
  for (auto& bucket : buckets_) bucket.flat.zero_();
}

void GradientReducer::prepare(bool sync) {
  std::lock_guard<std::mutex> lock(mutex_);
  syncing_ = sync && group_.size() > 1;
  next_bucket_ = 0;
  started_in_backward_ = 0;
  for (auto& bucket : buckets_) {
    bucket.ready = 0;
    bucket.pending.reset();
  }
  for (auto& p : params_) p.seen = false;
  backward_clock_.reset();
}

void GradientReducer::on_grad_ready(size_t param_index) {
  std::lock_guard<std::mutex> lock(mutex_);
  Param& p = params_[param_index];
  if (p.seen) return;  // a parameter used twice in the graph fires once per use
  p.seen = true;
  if (!syncing_) return;
  ++buckets_[p.bucket].ready;
  start_ready_buckets_locked();
}

void GradientReducer::start_ready_buckets_locked() {
  while (next_bucket_ < buckets_.size() &&
         buckets_[next_bucket_].ready == buckets_[next_bucket_].params.size()) {
    buckets_[next_bucket_].pending = group_.all_reduce_sum_async(buckets_[next_bucket_].flat);
    ++next_bucket_;
    ++started_in_backward_;
  }
}

ReduceTimings GradientReducer::finish(const Deadline& deadline) {
  ReduceTimings timings;
  timings.buckets = static_cast<int>(buckets_.size());
  timings.backward_s = backward_clock_.seconds();
  if (!syncing_) return timings;
  std::lock_guard<std::mutex> lock(mutex_);
  timings.buckets_started_in_backward = started_in_backward_;
  // Buckets with unused parameters never filled up: start them now, in order.
  Stopwatch wait_clock;
  for (; next_bucket_ < buckets_.size(); ++next_bucket_)
    buckets_[next_bucket_].pending = group_.all_reduce_sum_async(buckets_[next_bucket_].flat);
  const double scale = 1.0 / group_.size();
  for (auto& bucket : buckets_) {
    bucket.pending->wait(deadline);
    bucket.pending.reset();
    bucket.flat.mul_(scale);
  }
  timings.comm_wait_s = wait_clock.seconds();
  syncing_ = false;
  return timings;
}

std::vector<std::vector<std::string>> GradientReducer::bucket_layout() const {
  std::vector<std::vector<std::string>> layout;
  for (const auto& bucket : buckets_) {
    layout.emplace_back();
    for (size_t i : bucket.params) layout.back().push_back(params_[i].name);
  }
  return layout;
}

}  // namespace harvest
