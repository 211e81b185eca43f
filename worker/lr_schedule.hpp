// Learning-rate schedule of the recipe: linear warm-up, then cosine decay to min_ratio x peak.
#pragma once

#include <cstdint>

namespace harvest {

class CosineSchedule {
 public:
  CosineSchedule(double peak_lr, double min_ratio, int64_t warmup_steps, int64_t total_steps);
  // Learning rate for optimizer step `step` (0-based). Pure function of the step: resuming at
  // step s gives the same value as an uninterrupted run.
  double lr(int64_t step) const;
  int64_t warmup_steps() const { return warmup_; }

 private:
  double peak_;
  double min_;
  int64_t warmup_;
  int64_t total_;
};

// warmup_epochs x steps per epoch, rounded, at most total_steps.
int64_t warmup_steps_for(double warmup_epochs, int64_t dataset_size, int64_t global_batch,
                         int64_t total_steps);

}  // namespace harvest
