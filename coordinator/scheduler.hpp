// SchedulerActor: loader -> worker assignment (data.loader_placement = coordinator). Whenever the
// worker group or the set of loaders changes it deals the registered loaders over the ranks of the
// current generation (sticky: a loader keeps its rank while it can; balanced: ranks differ by at
// most one loader) and sends a ShardPlan to every loader (which worker to feed, at which endpoint)
// and to every worker (which loaders feed it). What each loader builds, and from which data
// position, the worker tells it (LoaderControl.start), since only the worker knows exactly which
// batches it has consumed; the plan's (epoch, cursor) is the last committed checkpoint's.
#pragma once

#include <map>
#include <vector>

#include "coordinator/journal.hpp"
#include "coordinator/settings.hpp"

namespace harvest::coord {

class SchedulerActor : public Actor {
 public:
  SchedulerActor(ZmqContext& ctx, const CoordinatorSettings& settings, const JobState& replayed);
  ~SchedulerActor() override { stop(); }  // before the members the loop uses go away

 protected:
  void handle(const std::string& from, const InMessage& message) override;

 private:
  void replan();

  std::map<uint64_t, JournalMember> loaders_;
  std::map<uint64_t, uint32_t> placed_;  // loader -> the rank it feeds
  std::map<uint64_t, JournalMember> workers_;
  uint64_t generation_ = 0;
  std::vector<uint64_t> ranks_;
  JournalCommit resume_;
};

}  // namespace harvest::coord
