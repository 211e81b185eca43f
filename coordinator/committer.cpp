#include "coordinator/committer.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace harvest::coord {

CheckpointCommitter::CheckpointCommitter(ZmqContext& ctx, const CoordinatorSettings& settings, const JobState& replayed)
    : Actor(ctx, actors::kCommitter, settings.heartbeat,
            {actors::kGateway, actors::kJournal, actors::kMembership, actors::kRendezvous, actors::kScheduler,
             actors::kSweeper}),
      generation_(replayed.generation),
      ranks_(replayed.ranks),
      last_committed_step_(replayed.last_commit.step),
      has_commit_(!replayed.last_commit.path.empty()) {
  for (const auto& [id, m] : replayed.members)
    if (m.role == proto::Role::WORKER) routing_[id] = m.routing_id;
}

void CheckpointCommitter::handle(const std::string& from, const InMessage& message) {
  const auto body = message.body();
  switch (message.which()) {
    case Body::MEMBER_JOINED:
    case Body::MEMBER_REATTACHED: {
      const auto e = message.which() == Body::MEMBER_JOINED ? body.getMemberJoined() : body.getMemberReattached();
      if (e.getRole() == proto::Role::WORKER)
        routing_[e.getMemberId()] = routing_id_of(e);
      return;
    }
    case Body::MEMBER_LOST:
      routing_.erase(body.getMemberLost().getMemberId());
      return;
    case Body::GENERATION_FORMED: {
      const auto g = body.getGenerationFormed();
      generation_ = g.getGeneration();
      ranks_ = to_vector(g.getMemberIds());
      pending_.clear();
      return;
    }
    case Body::ABORT:
      generation_ = body.getAbort().getGeneration();
      ranks_.clear();
      fail_waiters(cat("generation aborted (", body.getAbort().getReason().cStr(),
                       ") before a checkpoint after the request was committed; the job resumes from "
                       "the last committed one"));
      if (!pending_.empty())
        spdlog::warn("checkpoint(s) for step {}..{} abandoned: generation aborted before every rank acked",
                     pending_.begin()->first, pending_.rbegin()->first);
      pending_.clear();
      return;
    case Body::CHECKPOINT_ACK: return handle_ack(from, body.getCheckpointAck());
    case Body::CHECKPOINT_REQUEST: return handle_request(from);
    case Body::JOURNAL_WRITTEN: {
      HARVEST_ASSERT(!awaiting_journal_.empty(), "journalWritten with no commit waiting for it");
      const JournalCommit c = awaiting_journal_.front();
      awaiting_journal_.pop_front();
      OutMessage out;
      auto commit = out.body().initCheckpointCommit();
      commit.setGeneration(c.generation);
      commit.setStep(c.step);
      commit.setPath(c.path);
      commit.setEpoch(c.epoch);
      commit.setDataCursor(c.data_cursor);
      const std::string bytes = out.bytes();
      broadcast(bytes);
      send_to(actors::kMembership, bytes);
      send_to(actors::kRendezvous, bytes);
      send_to(actors::kScheduler, bytes);
      send_to(actors::kSweeper, bytes);
      spdlog::info("checkpoint step {} committed ({}), data cursor {}", c.step, c.path, c.data_cursor);
      std::vector<Waiter> still;
      for (Waiter& w : waiters_) {
        if (!w.bounded || c.step > w.after_step)
          send_to_peer(w.peer, bytes);
        else
          still.push_back(std::move(w));
      }
      waiters_.swap(still);
      return;
    }
    default:
      fail(ErrorKind::Internal, "committer does not handle ", body_name(message.which()));
  }
}

void CheckpointCommitter::handle_ack(const std::string& from, proto::CheckpointAck::Reader ack) {
  const int32_t rank = ack.getRank();
  const bool valid_rank = rank >= 0 && static_cast<size_t>(rank) < ranks_.size();
  const auto sender = routing_.find(ack.getMemberId());
  const bool from_member = sender != routing_.end() && sender->second == from;
  if (!from_member || ack.getGeneration() != generation_ || !valid_rank ||
      ranks_[static_cast<size_t>(rank)] != ack.getMemberId() ||
      (has_commit_ && ack.getStep() <= last_committed_step_)) {
    send_to_peer(from, error_message(proto::ErrorKind::REJECTED,
                                     cat("checkpointAck for step ", ack.getStep(), " (generation ", ack.getGeneration(),
                                         ", rank ", rank, ", member ", ack.getMemberId(),
                                         ") does not match generation ", generation_, " of ", ranks_.size(),
                                         " rank(s) or is not after the last commit (step ", last_committed_step_, ")")));
    return;
  }
  Pending& p = pending_[ack.getStep()];
  if (rank == 0 || p.path.empty()) p.path = ack.getPath();
  p.epoch = std::max(p.epoch, ack.getEpoch());
  p.data_cursor = std::max(p.data_cursor, ack.getDataCursor());
  p.ranks.insert(rank);
  if (p.ranks.size() < ranks_.size()) return;

  const uint64_t step = ack.getStep();
  JournalCommit c{generation_, step, p.path, p.epoch, p.data_cursor};
  // Older pending steps can never complete usefully once a later one is committed.
  pending_.erase(pending_.begin(), pending_.upper_bound(step));
  last_committed_step_ = step;
  has_commit_ = true;
  awaiting_journal_.push_back(c);
  OutMessage record;
  auto commit = record.body().initCheckpointCommit();
  commit.setGeneration(c.generation);
  commit.setStep(c.step);
  commit.setPath(c.path);
  commit.setEpoch(c.epoch);
  commit.setDataCursor(c.data_cursor);
  send_to(actors::kJournal, record.bytes());  // phase 2 continues on journalWritten
}

void CheckpointCommitter::handle_request(const std::string& from) {
  if (ranks_.empty()) {
    send_to_peer(from, error_message(proto::ErrorKind::REJECTED,
                                     "checkpointRequest: no generation is training (nothing to checkpoint)"));
    return;
  }
  if (waiters_.size() >= kMaxWaiters) {
    send_to_peer(from, error_message(proto::ErrorKind::REJECTED,
                                     cat("checkpointRequest: ", waiters_.size(), " requests already waiting")));
    return;
  }
  // Only a checkpoint the ranks start after this request counts: one in flight or committed
  // already holds older state.
  Waiter w;
  w.peer = from;
  w.bounded = has_commit_ || !pending_.empty();
  w.after_step = has_commit_ ? last_committed_step_ : 0;
  if (!pending_.empty()) w.after_step = std::max(w.after_step, pending_.rbegin()->first);
  waiters_.push_back(std::move(w));
  OutMessage out;
  auto request = out.body().initCheckpointRequest();
  request.setGeneration(generation_);
  request.setStep(0);  // the ranks pick the step: their next boundary, agreed among them
  request.setFinal(false);
  broadcast(out.bytes());
  spdlog::info("checkpoint requested: asked the {} rank(s) of generation {} to save at their next step",
               ranks_.size(), generation_);
}

void CheckpointCommitter::fail_waiters(const std::string& why) {
  for (const Waiter& w : waiters_)
    send_to_peer(w.peer, error_message(proto::ErrorKind::REJECTED, cat("checkpointRequest: ", why)));
  waiters_.clear();
}

void CheckpointCommitter::broadcast(const std::string& bytes) {
  for (const uint64_t id : ranks_) {
    auto it = routing_.find(id);
    if (it != routing_.end()) send_to_peer(it->second, bytes);
  }
}

}  // namespace harvest::coord
