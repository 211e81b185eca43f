// The single-process training run (`harvest train`): one worker, in-process decoding, checkpoints,
// metrics. The loop reads top to bottom: resume, then per step TrainStep::run(), diagnostics,
// checkpoint at the interval; a final checkpoint at the end.
#pragma once

#include <string>

#include "core/config/config.hpp"

namespace harvest {

struct TrainSummary {
  int64_t first_step = 0;  // > 0 when resumed
  int64_t steps = 0;       // the step reached
  double train_seconds = 0;
  double clips_per_s = 0;
  double data_wait_fraction = 0;
  int64_t skipped_steps = 0;
  int64_t bad_samples = 0;
  double final_loss = 0;
  std::string last_checkpoint;  // folder of the last committed checkpoint ("" if none)
};

// Runs train.steps optimizer steps (continuing a committed checkpoint per checkpoint.resume).
TrainSummary train_single_process(const Config& config);

}  // namespace harvest
