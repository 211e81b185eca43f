// SweeperActor: evaluation while training runs. Eval members (`harvest sweep RUN_DIR
// --coordinator ADDR`, role eval: an idle GPU or CPU node, or what `harvest run` starts) register
// like any peer; every committed checkpoint whose step is a multiple of eval.every_steps, and the
// final one, becomes a job, handed to an idle eval member as evalJob (one job per member at a
// time, oldest checkpoint first). The member evaluates it exactly as `harvest sweep` does (results
// in <run_dir>/eval, resumable, skipping what is done) and answers evalResult with the flat metrics
// or an error. A member lost mid-job gives its job back to the queue, ahead of the others.
// Jobs are not journalled: after a coordinator restart the checkpoints committed before it are
// `harvest sweep`'s to pick up (it skips what was evaluated).
#pragma once

#include <deque>
#include <map>
#include <string>

#include "coordinator/actor.hpp"
#include "coordinator/settings.hpp"

namespace harvest::coord {

class SweeperActor : public Actor {
 public:
  SweeperActor(ZmqContext& ctx, const CoordinatorSettings& settings);
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
    uint64_t job = 0;  // 0: idle
  };
  void dispatch();

  CoordinatorSettings settings_;
  std::map<uint64_t, Evaluator> evaluators_;  // by member id
  std::deque<Job> queue_;
  std::map<uint64_t, Job> running_;  // by job id
  uint64_t next_job_ = 1;
  int64_t last_queued_step_ = -1;
};

}  // namespace harvest::coord
