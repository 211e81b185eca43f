// SweeperActor: evaluation while training runs. Every committed checkpoint whose step is a
// multiple of eval.every_steps, and the final one, becomes a job, handed as evalJob to an idle
// evaluator (one job each at a time, oldest checkpoint first):
//   - eval members (`harvest sweep RUN_DIR --coordinator ADDR`, role eval: an idle GPU or CPU
//     node, or what `harvest run` starts), first;
//   - spare workers (eval.spare_workers, with eval.manifest set): workers the current generation
//     left without a rank (beyond dist.max_workers), learned from the rendezvous' generationFormed.
//     None between an abort and the next generation (every worker may be about to get a rank).
//     A spare that is given a rank cancels its evaluation (within one batch) and the sweeper
//     queues the job again when it sees that generation formed.
// The evaluator evaluates exactly as `harvest sweep` does (results in <run_dir>/eval, resumable,
// skipping what is done) and answers evalResult with the flat metrics or an error. A job whose
// evaluator is lost or ranked goes back to the queue, ahead of the others.
// The end of training (train.steps committed, the generation closed, every rank gone) is the
// sweeper's to tell the remaining workers: spares first evaluate what is still queued (with
// eval.spare_workers), and each is sent a graceful shutdown ("training finished at step N") once
// it is idle with nothing left to hand out; so is any worker joining later.
// Jobs are not journalled: after a coordinator restart the checkpoints committed before it are
// `harvest sweep`'s to pick up (it skips what was evaluated).
#pragma once

#include <deque>
#include <map>
#include <set>
#include <string>

#include "coordinator/actor.hpp"
#include "coordinator/journal.hpp"
#include "coordinator/settings.hpp"

namespace harvest::coord {

class SweeperActor : public Actor {
 public:
  SweeperActor(ZmqContext& ctx, const CoordinatorSettings& settings, const JobState& replayed);
  ~SweeperActor() override { stop(); }  // before the members the loop uses go away

 protected:
  void handle(const std::string& from, const InMessage& message) override;

 private:
  struct Job {
    uint64_t id = 0;
    uint64_t step = 0;
    std::string path;  // the committed step folder
  };
  struct Evaluator {
    std::string routing_id;
    bool worker = false;  // a training worker, used only while it is a spare
    uint64_t job = 0;     // 0: idle
    bool told_to_leave = false;
  };
  void dispatch();
  // Training is finished: train.steps committed, the last generation closed, no rank left.
  void check_finished();
  bool available(uint64_t member_id, const Evaluator& e) const;
  void hand_out(uint64_t member_id, Evaluator& e);
  // The job `e` holds goes back to the front of the queue.
  void requeue(Evaluator& e, const std::string& why);

  CoordinatorSettings settings_;
  std::map<uint64_t, Evaluator> evaluators_;  // eval members and workers, by member id
  std::set<uint64_t> ranked_;  // the live ranks of the generation formed last
  bool formed_ = false;        // a generation is formed (false from an abort to the next one)
  bool final_committed_ = false;  // train.steps is committed
  bool finished_ = false;         // training is finished (check_finished)
  std::deque<Job> queue_;
  std::map<uint64_t, Job> running_;  // by job id
  uint64_t next_job_ = 1;
  int64_t last_queued_step_ = -1;
};

}  // namespace harvest::coord
