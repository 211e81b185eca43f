// RendezvousActor: generations of the worker group. Forms a generation from the live workers
// (dist.world_size of them, or fewer down to dist.min_workers after coordinator.rendezvous_wait_s),
// sends each its rank (Assign), waits for rank 0's backend offer (NCCL unique id / Gloo store),
// hands it to every rank (Rendezvous). When a ranked worker is lost: generation + 1 and Abort to
// every survivor at once, so nobody waits in a collective for a dead peer, then re-forms.
//
//   waiting --enough workers--> forming --rank 0 offer--> running
//      ^                           |                        |
//      +-------- worker lost / rank 0 silent past dist.timeout_s / replacement joined ----+
//   running --every rank left cleanly with train.steps committed--> finished (no more generations)
// The GenerationFormed and Abort records also go to the sweeper, which hands eval jobs to spares.
#pragma once

#include <map>
#include <set>
#include <vector>

#include "coordinator/journal.hpp"
#include "coordinator/settings.hpp"
#include "core/time.hpp"

namespace harvest::coord {

class RendezvousActor : public Actor {
 public:
  RendezvousActor(ZmqContext& ctx, const CoordinatorSettings& settings, const JobState& replayed);
  ~RendezvousActor() override { stop(); }  // before the members the loop uses go away

 protected:
  void handle(const std::string& from, const InMessage& message) override;
  void on_tick() override;

 private:
  enum class Phase { Waiting, Forming, Running };

  void maybe_form();
  void form();
  void abort_generation(const std::string& reason, uint64_t lost_member);
  // Every rank left cleanly (training finished, or an agreed stop): the generation is over. Like
  // an abort for the other actors and the journal (a replay forgets its ranks, so the workers of
  // a later run, a Slurm requeue say, form the next generation), with no survivors to tell.
  void close_generation(const std::string& reason);
  // Once train.steps is committed and the last generation was closed (every rank left
  // cleanly): no generation forms again (the sweeper lets the spares evaluate what is queued,
  // then tells them to leave).
  void maybe_finish();
  // Shared by both: the next generation number, no ranks, an abort record to the journal and the
  // other actors (and, when `tell_survivors`, to every rank but `lost_member`).
  void end_generation(const std::string& reason, uint64_t lost_member, bool tell_survivors);
  void handle_offer(const std::string& from, proto::RendezvousOffer::Reader offer);
  void send_to_member(uint64_t member_id, const std::string& bytes);

  CoordinatorSettings settings_;
  std::map<uint64_t, JournalMember> workers_;  // live workers
  Phase phase_ = Phase::Waiting;
  uint64_t generation_ = 0;
  bool generation_used_ = true;  // the current number already named a formed group
  std::vector<uint64_t> ranks_;  // member id per rank
  std::set<uint64_t> departed_;  // ranks of the current generation that left cleanly
  Clock::time_point waiting_since_;
  // The first generation waits for dist.world_size workers; only after a loss may a group
  // re-form smaller (down to dist.min_workers) once rendezvous_wait has passed.
  bool shrink_allowed_ = false;
  Clock::time_point forming_since_;
  JournalCommit resume_;
  bool finished_ = false;
  bool closed_clean_ = false;  // the last generation ended with every rank leaving cleanly
};

}  // namespace harvest::coord
