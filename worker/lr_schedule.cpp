#include "worker/lr_schedule.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"

namespace harvest {

CosineSchedule::CosineSchedule(double peak_lr, double min_ratio, int64_t warmup_steps,
                               int64_t total_steps)
    : peak_(peak_lr), min_(peak_lr * min_ratio), warmup_(warmup_steps), total_(total_steps) {
  HARVEST_REQUIRE(total_steps > 0, Config, "train.steps must be positive (got ", total_steps, ")");
  HARVEST_REQUIRE(warmup_steps >= 0 && warmup_steps <= total_steps, Config, "warm-up of ",
                  warmup_steps, " steps does not fit in train.steps = ", total_steps);
}

double CosineSchedule::lr(int64_t step) const {
  if (step < warmup_) return peak_ * static_cast<double>(step + 1) / static_cast<double>(warmup_);
  const int64_t decay_steps = std::max<int64_t>(1, total_ - warmup_);
  const double progress = std::min(1.0, static_cast<double>(step - warmup_) / decay_steps);
  return min_ + 0.5 * (peak_ - min_) * (1.0 + std::cos(M_PI * progress));
}

int64_t warmup_steps_for(double warmup_epochs, int64_t dataset_size, int64_t global_batch,
                         int64_t total_steps) {
  HARVEST_REQUIRE(global_batch > 0, Config, "global batch must be positive");
  const double steps_per_epoch = static_cast<double>(dataset_size) / static_cast<double>(global_batch);
  const auto warmup = static_cast<int64_t>(std::llround(warmup_epochs * steps_per_epoch));
  return std::min(warmup, total_steps);
}

}  // namespace harvest
