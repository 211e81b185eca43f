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
#pragma once

#include <atomic>
#include <cstdint>

#include "core/config/config.hpp"

namespace harvest {

struct WorkerOptions {
  // The rank this worker asks for (-1: any). `harvest run` gives worker i rank i, so a restarted
  // worker takes its old rank, and with it its checkpoint part and random streams.
  int32_t desired_rank = -1;
  // The CUDA device this worker owns on its node (-1: $LOCAL_RANK, else $SLURM_LOCALID, else 0);
  // unused on CPU. `harvest run` gives worker i device i.
  int32_t device = -1;
};

// Runs until training finishes or `stop` (a signal number) is agreed; returns the exit status
// (0: finished or stopped with its final checkpoint committed). Throws on unrecoverable errors.
int run_coordinated_worker(const Config& config, const WorkerOptions& options,
                           const std::atomic<int>& stop);

}  // namespace harvest
