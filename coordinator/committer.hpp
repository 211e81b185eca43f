// CheckpointCommitter: the two-phase checkpoint commit.
//   phase 1: every rank of the current generation saves its part for step s and sends
//            checkpointAck (its part is durable: written and fsync'd);
//   phase 2: when all ranks acked step s, the commit goes to the journal (fsync'd), and only then
//            checkpointCommit is sent to every rank (rank 0 writes the commit marker).
// A checkpoint is committed only if the journal says so: a crash between the phases leaves an
// uncommitted checkpoint that resume ignores. Acks from older generations are rejected.
// A client's checkpointRequest (`harvest checkpoint`) is forwarded to every rank, which save at
// their next step boundary (agreed among them); the client gets the checkpointCommit of the
// first checkpoint committed after its request, or an error when none can come.
#pragma once

#include <deque>
#include <map>
#include <set>

#include "coordinator/journal.hpp"
#include "coordinator/settings.hpp"

namespace harvest::coord {

class CheckpointCommitter : public Actor {
 public:
  CheckpointCommitter(ZmqContext& ctx, const CoordinatorSettings& settings, const JobState& replayed);
  ~CheckpointCommitter() override { stop(); }  // before the members the loop uses go away

 protected:
  void handle(const std::string& from, const InMessage& message) override;

 private:
  struct Pending {
    std::set<int32_t> ranks;
    std::string path;
    uint64_t epoch = 0;
    uint64_t data_cursor = 0;
  };

  // A client waiting for the first commit of a step after `after_step` (any step when !bounded).
  struct Waiter {
    std::string peer;
    uint64_t after_step = 0;
    bool bounded = false;
  };

  void handle_ack(const std::string& from, proto::CheckpointAck::Reader ack);
  void handle_request(const std::string& from);
  void fail_waiters(const std::string& why);
  void broadcast(const std::string& bytes);

  static constexpr size_t kMaxWaiters = 64;
  std::vector<Waiter> waiters_;

  std::map<uint64_t, std::string> routing_;  // live workers
  uint64_t generation_ = 0;
  std::vector<uint64_t> ranks_;
  std::map<uint64_t, Pending> pending_;  // by step, current generation only
  std::deque<JournalCommit> awaiting_journal_;
  uint64_t last_committed_step_ = 0;
  bool has_commit_ = false;  // a step-0 checkpoint (checkpoint.save_initial) is a commit too
};

}  // namespace harvest::coord
