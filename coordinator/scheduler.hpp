// SchedulerActor: loader -> worker assignment. Whenever the worker group or the set of loaders
// changes it deals loaders out round-robin over the ranks of the current generation and sends a
// ShardPlan to every loader (whom to feed, from which data position) and to every worker (which
// loaders feed it). The data position is the last committed checkpoint's (epoch, cursor), so a
// re-formed group resumes exactly where the committed state is.
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
  std::map<uint64_t, JournalMember> workers_;
  uint64_t generation_ = 0;
  std::vector<uint64_t> ranks_;
  JournalCommit resume_;
};

}  // namespace harvest::coord
