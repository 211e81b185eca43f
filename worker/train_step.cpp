#include "worker/train_step.hpp"

#include <cstdlib>

#include "core/error.hpp"
#include "core/time.hpp"

namespace harvest {

void set_deterministic_kernels(bool on) {
  if (on) ::setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", /*overwrite=*/0);
  at::globalContext().setDeterministicAlgorithms(on, /*warn_only=*/false);
  at::globalContext().setDeterministicCuDNN(on);
  if (on) at::globalContext().setBenchmarkCuDNN(false);
}

namespace {
std::vector<std::pair<std::string, at::Tensor>> trainable_named(torch::nn::Module& module) {
  std::vector<std::pair<std::string, at::Tensor>> named;
  for (const auto& p : module.named_parameters())
    if (p.value().requires_grad()) named.emplace_back(p.key(), p.value());
  return named;
}
}  // namespace

TrainStep::TrainStep(VideoTextModel model, CommGroup& group, const TrainConfig& train,
                     const DistConfig& dist, int64_t total_steps, int64_t warmup_steps,
                     torch::Device device)
    : model_(std::move(model)),
      group_(group),
      collective_(group, dist.timeout_s),
      schedule_(train.lr, train.min_lr_ratio, warmup_steps, total_steps),
      weights_{train.vtc_weight, train.mlm_weight},
      accumulation_(train.accumulation),
      grad_clip_(train.grad_clip),
      timeout_s_(dist.timeout_s),
      device_(device) {
  const auto named = trainable_named(*model_);
  for (const auto& [name, p] : named) trainable_.push_back(p);
  const ParamGroups groups = model_->param_groups();
  optimizer_ = make_adamw(groups.decay, groups.no_decay, train);
  reducer_ = std::make_unique<GradientReducer>(named, group_, dist.bucket_mb);
}

StepOutcome TrainStep::run(BatchSource& source, int64_t step) {
  StepOutcome out;
  out.step = step;
  Stopwatch step_clock;
  model_->train();

  // 1. Micro-batches: fetch, move to the device, forward, backward. The last backward starts
  //    the gradient all-reduce bucket by bucket while it runs.
  reducer_->zero_grad();
  for (int64_t micro = 0; micro < accumulation_; ++micro) {
    Stopwatch wait_clock;
    HostBatch batch = source.next();
    out.data_wait_s += wait_clock.seconds();
    const at::Tensor video = batch.video.to(device_, /*non_blocking=*/true);
    const at::Tensor text = batch.text.to(device_, /*non_blocking=*/true);
    reducer_->prepare(/*sync=*/micro + 1 == accumulation_);
    const LossParts loss = model_->forward(video, text, collective_, weights_);
    (loss.total / static_cast<double>(accumulation_)).backward();
    out.loss += loss.vtc.item<double>() * weights_.vtc + loss.mlm.item<double>() * weights_.mlm;
    out.vtc += loss.vtc.item<double>();
    out.mlm += loss.mlm.item<double>();
    out.logit_scale = loss.logit_scale.item<double>();
    out.clips += batch.video.size(0);
    out.bad_samples += batch.bad_samples;
  }
  out.loss /= accumulation_;
  out.vtc /= accumulation_;
  out.mlm /= accumulation_;

  // 2. Finish the all-reduce: gradients are now the global-batch average on every rank.
  out.reduce = reducer_->finish(Deadline::after_seconds(timeout_s_));

  // 3. Non-finite gradients anywhere skip the step everywhere.
  const at::Tensor norm = total_grad_norm();
  out.grad_norm = norm.item<double>();
  if (!agreed_finite(norm)) {
    out.step_s = step_clock.seconds();
    return out;
  }

  // 4. Clip, schedule, update.
  if (grad_clip_ > 0 && out.grad_norm > grad_clip_) {
    const double scale = grad_clip_ / (out.grad_norm + 1e-6);
    for (auto& p : trainable_) p.mutable_grad().mul_(scale);
  }
  out.lr = schedule_.lr(step);
  set_learning_rate(*optimizer_.adamw, out.lr);
  optimizer_.adamw->step();
  model_->clamp_logit_scale();
  out.applied = true;
  out.step_s = step_clock.seconds();
  return out;
}

at::Tensor TrainStep::total_grad_norm() const {
  std::vector<at::Tensor> norms;
  norms.reserve(trainable_.size());
  for (const auto& p : trainable_) norms.push_back(p.grad().detach().norm(2).to(at::kFloat));
  return at::stack(norms).norm(2);
}

bool TrainStep::agreed_finite(const at::Tensor& grad_norm) {
  // The reduced gradients are identical on every rank, but the decision is all-reduced anyway
  // so that no rank can ever step alone.
  at::Tensor bad = (~at::isfinite(grad_norm)).to(at::kFloat).reshape({1});
  group_.all_reduce_sum(bad, Deadline::after_seconds(timeout_s_));
  return bad.item<float>() == 0.0f;
}

}  // namespace harvest
