// TrainStep: one optimizer step of the recipe, readable top to bottom (train_step.cpp):
// fetch -> device -> forward (VTC + MLM) -> backward -> reduce -> agreed finite check -> clip
// -> schedule -> AdamW. Diagnostics are returned, never computed inside the hot path.
// LibTorch (+ the CommGroup backends) only: it builds in HARVEST_MODEL_ONLY.
#pragma once

#include <torch/torch.h>

#include <memory>

#include "core/config/config.hpp"
#include "model/video_text_model.hpp"
#include "worker/batch_source.hpp"
#include "worker/collective_adapter.hpp"
#include "worker/grad_reducer.hpp"
#include "worker/lr_schedule.hpp"
#include "worker/optimizer.hpp"

namespace harvest {

// train.deterministic: LibTorch's deterministic algorithms everywhere (an op without a
// deterministic kernel is an error, not a silent difference), cuDNN deterministic without
// autotuning, and cuBLAS's fixed workspace (CUBLAS_WORKSPACE_CONFIG=:4096:8 unless set; it must
// be in the environment before the first cuBLAS call, so call this before the model moves to
// the device). CPU training is bitwise reproducible without it; this extends that to CUDA.
void set_deterministic_kernels(bool on);

struct StepOutcome {
  int64_t step = 0;
  bool applied = false;  // false: non-finite gradients somewhere, step skipped on every rank
  double loss = 0, vtc = 0, mlm = 0;  // means over the micro-batches
  double logit_scale = 0;
  double grad_norm = 0;  // before clipping
  double lr = 0;
  int64_t clips = 0;     // this rank's clips in the step
  int64_t bad_samples = 0;
  double data_wait_s = 0;  // blocked in BatchSource::next()
  double step_s = 0;       // wall time of the whole step
  ReduceTimings reduce;
};

class TrainStep {
 public:
  // `total_steps`/`warmup_steps` drive the schedule; `device` is where batches are moved.
  TrainStep(VideoTextModel model, CommGroup& group, const TrainConfig& train, const DistConfig& dist,
            int64_t total_steps, int64_t warmup_steps, torch::Device device);

  StepOutcome run(BatchSource& source, int64_t step);

  torch::optim::AdamW& optimizer() { return *optimizer_.adamw; }
  VideoTextModel& model() { return model_; }
  const CosineSchedule& schedule() const { return schedule_; }

 private:
  bool agreed_finite(const at::Tensor& grad_norm);
  at::Tensor total_grad_norm() const;

  VideoTextModel model_;
  CommGroup& group_;
  GroupCollective collective_;
  std::vector<at::Tensor> trainable_;
  std::unique_ptr<GradientReducer> reducer_;
  OptimizerParts optimizer_;
  CosineSchedule schedule_;
  LossWeights weights_;
  int64_t accumulation_;
  double grad_clip_;
  double timeout_s_;
  torch::Device device_;
};

}  // namespace harvest
