// The single-process training run (`harvest train`): one worker, no coordinator, checkpoints,
// metrics. The loop reads top to bottom: resume, then per step RankTrainer::step(), a checkpoint
// at the interval; a final checkpoint at the end.
#pragma once

#include <string>

#include "core/config/config.hpp"
#include "worker/rank_trainer.hpp"

namespace harvest {

// Runs train.steps optimizer steps (continuing a committed checkpoint per checkpoint.resume).
TrainSummary train_single_process(const Config& config);

}  // namespace harvest
