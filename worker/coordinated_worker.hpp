// `harvest worker`: one training process driven by the coordinator (docs/protocol.md).
//
//   register --assign(rank, generation)--> rank 0 serves the Gloo store and offers it
//            --rendezvous(store, resume checkpoint)--> form the group, resume, train:
//                RankTrainer steps; progress in heartbeats and step reports; every
//                checkpoint.every_steps each rank writes its part and acks it (phase 1); on
//                checkpointCommit rank 0 writes the commit marker (phase 2)
//            --abort (a peer was lost)--> collectives aborted at once from the client thread;
//                back to waiting for the next assign; the new generation resumes from the
//                last committed checkpoint
//            --done, or a stop signal agreed by every rank at a step boundary--> final
//                checkpoint committed, leave, exit 0
//   a spare (assign with rank -1) waits for a place, evaluating the checkpoints the coordinator
//   hands it meanwhile (evalJob -> evalResult); a rank cancels the evaluation within one batch;
//   a graceful shutdown (training finished) lets the evaluation end, then leaves, exit 0
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/config/config.hpp"

namespace harvest {

// What a spare worker's evaluation of one evalJob came to.
struct SpareEvalOutcome {
  std::vector<std::pair<std::string, double>> metrics;  // "<task>.<metric>"
  std::string error;                                    // non-empty: failed
  bool cancelled = false;                               // stopped by the cancel flag
};

// Evaluates the committed step folder `checkpoint` on `device` ("cpu", "cuda:N") as a sweep
// would, checking `cancel` between batches. The CLI supplies it (the worker does not depend on
// eval/); empty: the worker answers eval jobs with an error.
using SpareEvaluator = std::function<SpareEvalOutcome(
    const std::string& checkpoint, const std::string& device, const std::atomic<bool>& cancel)>;

struct WorkerOptions {
  // The rank this worker asks for (-1: any). `harvest run` gives worker i rank i, so a restarted
  // worker takes its old rank, and with it its checkpoint part and random streams.
  int32_t desired_rank = -1;
  // The CUDA device this worker owns on its node (-1: $LOCAL_RANK, else $SLURM_LOCALID, else 0);
  // unused on CPU. `harvest run` gives worker i device i.
  int32_t device = -1;
  // While this worker is a spare (no rank in the current generation), evalJobs the coordinator
  // hands it (eval.spare_workers) run here on a thread of their own; a rank cancels them.
  SpareEvaluator spare_eval;
};

// Runs until training finishes or `stop` (a signal number) is agreed; returns the exit status
// (0: finished or stopped with its final checkpoint committed). Throws on unrecoverable errors.
int run_coordinated_worker(const Config& config, const WorkerOptions& options,
                           const std::atomic<int>& stop);

}  // namespace harvest
