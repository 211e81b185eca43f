#include "coordinator/rendezvous.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace harvest::coord {

RendezvousActor::RendezvousActor(ZmqContext& ctx, const CoordinatorSettings& settings, const JobState& replayed)
    : Actor(ctx, actors::kRendezvous, settings.heartbeat,
            {actors::kGateway, actors::kJournal, actors::kMembership, actors::kScheduler, actors::kCommitter,
             actors::kSweeper}),
      settings_(settings),
      generation_(replayed.generation),
      resume_(replayed.last_commit) {
  for (const auto& [id, m] : replayed.members)
    if (m.role == proto::Role::WORKER) workers_[id] = m;
  waiting_since_ = Clock::now();
  // A replayed running generation carries on: its workers never stopped training (the coordinator
  // is not in the data path). Those that do not reattach are lost and trigger a new generation.
  if (!replayed.ranks.empty()) {
    ranks_ = replayed.ranks;
    phase_ = Phase::Running;
  } else if (settings_.is_final_step(resume_.step)) {
    finished_ = true;  // a restart (or a new job on this journal) after training finished
  }
}

void RendezvousActor::handle(const std::string& from, const InMessage& message) {
  const auto body = message.body();
  switch (message.which()) {
    case Body::MEMBER_JOINED: {
      const auto e = body.getMemberJoined();
      if (e.getRole() != proto::Role::WORKER) return;
      JournalMember m;
      m.member_id = e.getMemberId();
      m.role = e.getRole();
      m.desired_rank = e.getDesiredRank();
      m.routing_id = routing_id_of(e);
      if (finished_) return;  // the sweeper gives it what evaluation is left, then sends it off
      workers_[m.member_id] = m;
      if (phase_ == Phase::Running && static_cast<int64_t>(ranks_.size()) < settings_.max_workers &&
          static_cast<int64_t>(ranks_.size()) < settings_.world_size) {
        abort_generation(cat("replacement worker ", m.member_id, " joined a group running with ", ranks_.size(),
                             " of ", settings_.world_size, " workers"),
                         0);
      }
      maybe_form();
      return;
    }
    case Body::MEMBER_REATTACHED: {
      const auto e = body.getMemberReattached();
      auto it = workers_.find(e.getMemberId());
      if (it != workers_.end())
        it->second.routing_id = routing_id_of(e);
      return;
    }
    case Body::MEMBER_LOST: {
      const auto lost = body.getMemberLost();
      const uint64_t id = lost.getMemberId();
      if (workers_.erase(id) == 0) return;
      // A rank that left cleanly ended with its group (every rank reached the same final step):
      // the others are finishing too, and aborting them would race their final commit. Once the
      // last one has left, the generation is over.
      if (lost.getClean()) {
        if (std::find(ranks_.begin(), ranks_.end(), id) == ranks_.end()) return;
        departed_.insert(id);
        if (departed_.size() == ranks_.size())
          close_generation(cat("every rank left cleanly (the last: ", lost.getReason().cStr(), ")"));
        return;
      }
      if (std::find(ranks_.begin(), ranks_.end(), id) != ranks_.end())
        abort_generation(cat("worker ", id, " lost: ", lost.getReason().cStr()), id);
      return;
    }
    case Body::RENDEZVOUS_OFFER: return handle_offer(from, body.getRendezvousOffer());
    case Body::CHECKPOINT_COMMIT: {
      const auto c = body.getCheckpointCommit();
      resume_ = JournalCommit{c.getGeneration(), c.getStep(), c.getPath(), c.getEpoch(), c.getDataCursor()};
      // The ranks leave after they saw this commit, but their leave may overtake it on the way
      // here: the end of training is noticed whichever comes second.
      maybe_finish();
      return;
    }
    default:
      fail(ErrorKind::Internal, "rendezvous does not handle ", body_name(message.which()));
  }
}

void RendezvousActor::on_tick() {
  if (phase_ == Phase::Waiting) maybe_form();
  if (phase_ == Phase::Forming && Clock::now() - forming_since_ > settings_.rendezvous_timeout)
    abort_generation(cat("rank 0 (member ", ranks_.empty() ? 0 : ranks_[0], ") sent no rendezvousOffer within ",
                         settings_.rendezvous_timeout.count(), " ms (dist.timeout_s)"),
                     0);
}

void RendezvousActor::maybe_form() {
  if (phase_ != Phase::Waiting || finished_) return;
  const auto alive = static_cast<int64_t>(workers_.size());
  if (alive >= settings_.world_size) return form();
  if (shrink_allowed_ && alive >= settings_.min_workers && alive > 0 &&
      Clock::now() - waiting_since_ >= settings_.rendezvous_wait)
    return form();
}

void RendezvousActor::form() {
  if (generation_used_) ++generation_;
  generation_used_ = true;
  // Desired ranks first (in order), then the rest by member id; extra workers wait as spares.
  std::vector<const JournalMember*> order;
  for (const auto& [id, m] : workers_) order.push_back(&m);
  std::stable_sort(order.begin(), order.end(), [](const JournalMember* a, const JournalMember* b) {
    const int64_t ka = a->desired_rank >= 0 ? a->desired_rank : INT32_MAX;
    const int64_t kb = b->desired_rank >= 0 ? b->desired_rank : INT32_MAX;
    return ka < kb;
  });
  const size_t size = std::min<size_t>(order.size(), static_cast<size_t>(settings_.max_workers));
  closed_clean_ = false;
  ranks_.clear();
  departed_.clear();
  for (size_t r = 0; r < size; ++r) ranks_.push_back(order[r]->member_id);

  OutMessage formed;
  auto g = formed.body().initGenerationFormed();
  g.setGeneration(generation_);
  g.setWorldSize(static_cast<uint32_t>(size));
  auto ids = g.initMemberIds(static_cast<unsigned>(size));
  for (size_t r = 0; r < size; ++r) ids.set(static_cast<unsigned>(r), ranks_[r]);
  const std::string bytes = formed.bytes();
  send_to(actors::kJournal, bytes);
  send_to(actors::kMembership, bytes);
  send_to(actors::kScheduler, bytes);
  send_to(actors::kCommitter, bytes);
  send_to(actors::kSweeper, bytes);

  for (size_t i = 0; i < order.size(); ++i) {
    OutMessage out;
    auto assign = out.body().initAssign();
    assign.setMemberId(order[i]->member_id);
    assign.setRank(i < size ? static_cast<int32_t>(i) : -1);
    assign.setWorldSize(static_cast<uint32_t>(size));
    assign.setGeneration(generation_);
    assign.setHeartbeatMs(static_cast<uint32_t>(settings_.heartbeat.count()));
    assign.setMissLimit(static_cast<uint32_t>(settings_.miss_limit));
    send_to_peer(order[i]->routing_id, out.bytes());
  }
  phase_ = Phase::Forming;
  forming_since_ = Clock::now();
  spdlog::info("generation {} forming with {} worker(s) (world_size {}, min {}, max {})", generation_, size,
               settings_.world_size, settings_.min_workers, settings_.max_workers);
}

void RendezvousActor::abort_generation(const std::string& reason, uint64_t lost_member) {
  end_generation(reason, lost_member, /*tell_survivors=*/true);
  shrink_allowed_ = true;
  spdlog::warn("generation {} aborted ({}); survivors told to abort their collectives", generation_ - 1, reason);
  maybe_form();
}

void RendezvousActor::close_generation(const std::string& reason) {
  end_generation(reason, 0, /*tell_survivors=*/false);
  closed_clean_ = true;
  spdlog::info("generation {} ended: {}", generation_ - 1, reason);
  maybe_finish();
  maybe_form();  // not once finished
}

void RendezvousActor::maybe_finish() {
  if (finished_ || !closed_clean_ || !settings_.is_final_step(resume_.step)) return;
  finished_ = true;
  spdlog::info("training finished at step {}: no generation forms again ({} spare worker(s) left)", resume_.step,
               workers_.size());
}

void RendezvousActor::end_generation(const std::string& reason, uint64_t lost_member, bool tell_survivors) {
  const std::vector<uint64_t> survivors = ranks_;
  closed_clean_ = false;  // close_generation() sets it again
  ++generation_;
  generation_used_ = false;
  ranks_.clear();
  departed_.clear();
  phase_ = Phase::Waiting;
  waiting_since_ = Clock::now();
  OutMessage out;
  auto abort = out.body().initAbort();
  abort.setGeneration(generation_);
  abort.setReason(reason);
  abort.setLostMemberId(lost_member);
  const std::string bytes = out.bytes();
  if (tell_survivors)
    for (const uint64_t id : survivors)
      if (id != lost_member) send_to_member(id, bytes);
  send_to(actors::kJournal, bytes);
  send_to(actors::kMembership, bytes);
  send_to(actors::kScheduler, bytes);
  send_to(actors::kCommitter, bytes);
  send_to(actors::kSweeper, bytes);
}

void RendezvousActor::handle_offer(const std::string& from, proto::RendezvousOffer::Reader offer) {
  if (phase_ != Phase::Forming || offer.getGeneration() != generation_ || ranks_.empty() ||
      offer.getMemberId() != ranks_[0] || workers_.at(ranks_[0]).routing_id != from) {
    send_to_peer(from, error_message(proto::ErrorKind::REJECTED,
                                     cat("rendezvousOffer for generation ", offer.getGeneration(), " from member ",
                                         offer.getMemberId(), " not accepted: the current generation is ", generation_,
                                         " and its rank 0 is member ", ranks_.empty() ? 0 : ranks_[0])));
    return;
  }
  const auto backend = offer.getBackend();
  if (backend.which() == proto::BackendInfo::NCCL_UNIQUE_ID && backend.getNcclUniqueId().size() != 128) {
    send_to_peer(from, error_message(proto::ErrorKind::REJECTED,
                                     cat("ncclUniqueId must be 128 bytes, got ", backend.getNcclUniqueId().size())));
    return;
  }
  for (size_t r = 0; r < ranks_.size(); ++r) {
    OutMessage out;
    auto rv = out.body().initRendezvous();
    rv.setGeneration(generation_);
    rv.setWorldSize(static_cast<uint32_t>(ranks_.size()));
    rv.setRank(static_cast<int32_t>(r));
    rv.setBackend(backend);
    rv.setResumeStep(resume_.step);
    rv.setResumeCheckpoint(resume_.path);
    send_to_member(ranks_[r], out.bytes());
  }
  phase_ = Phase::Running;
  spdlog::info("generation {} rendezvous complete: {} rank(s), resume from step {}", generation_, ranks_.size(),
               resume_.step);
}

void RendezvousActor::send_to_member(uint64_t member_id, const std::string& bytes) {
  auto it = workers_.find(member_id);
  if (it != workers_.end()) send_to_peer(it->second.routing_id, bytes);
}

}  // namespace harvest::coord
