// MembershipActor: who is in the job. Registers peers, answers heartbeats, detects failures
// (miss_limit missed heartbeats; a running worker with no step progress for step_deadline;
// journal members that do not reattach after a coordinator restart) and answers status
// requests. Every join and loss goes to the journal and to the rendezvous, scheduler and
// committer actors as memberJoined / memberLost / memberReattached. Notices when training is
// finished and tells the loaders to stop.
#pragma once

#include <atomic>
#include <map>
#include <optional>

#include "coordinator/journal.hpp"
#include "coordinator/settings.hpp"
#include "core/time.hpp"

namespace harvest::coord {

class MembershipActor : public Actor {
 public:
  MembershipActor(ZmqContext& ctx, const CoordinatorSettings& settings, const JobState& replayed,
                  uint64_t incarnation);
  ~MembershipActor() override { stop(); }  // before the members the loop uses go away

  // Any thread. Training is finished (train.steps committed, no live worker) and every other
  // member has gone too: nothing is left for this coordinator to do (coordinator.exit_when_done).
  bool job_done() const { return job_done_.load(); }

 protected:
  void handle(const std::string& from, const InMessage& message) override;
  void on_tick() override;

 private:
  struct Member {
    JournalMember info;
    proto::MemberState reported = proto::MemberState::REGISTERED;
    bool lost = false;
    bool reattaching = false;
    int32_t rank = -1;
    uint64_t generation = 0;
    uint64_t step = 0;
    double samples_per_sec = 0;
    Clock::time_point last_seen;
    Clock::time_point last_progress;
  };

  void handle_register(const std::string& from, proto::Register::Reader reg);
  void handle_heartbeat(const std::string& from, proto::Heartbeat::Reader hb);
  void handle_step_report(const std::string& from, proto::StepReport::Reader report);
  void handle_status(const std::string& from);
  void declare_lost(Member& member, const std::string& reason);
  // A clean leave (Leave.clean): the member is gone like a lost one, but as a normal ending: the
  // event carries clean = true and the rendezvous does not abort the generation for it.
  void declare_left(Member& member, const std::string& reason);
  // The member a wire message names, after checking it comes from that member's connection;
  // answers Error(unknownMember) and returns null when it does not.
  Member* live_member(const std::string& from, uint64_t member_id);
  void send_assign(const Member& member);
  // Training is finished once train.steps is committed and no worker is live: loaders are told
  // to stop (graceful Shutdown), now and when one registers later. Checked every tick.
  void check_finished();
  void send_shutdown(const Member& member, const std::string& reason, bool graceful);
  void broadcast_event(Body::Which kind, const Member& member, const std::string& reason, bool clean = false);

  CoordinatorSettings settings_;
  uint64_t incarnation_;
  Stopwatch uptime_;
  std::map<uint64_t, Member> members_;
  uint64_t next_member_id_;
  uint64_t generation_;
  uint32_t world_size_ = 0;
  uint64_t last_checkpoint_step_ = 0;
  std::string last_checkpoint_path_;
  bool finished_ = false;
  std::atomic<bool> job_done_{false};
};

}  // namespace harvest::coord
