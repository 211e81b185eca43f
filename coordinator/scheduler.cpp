#include "coordinator/scheduler.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace harvest::coord {
namespace {

JournalMember from_event(proto::MemberEvent::Reader e) {
  JournalMember m;
  m.member_id = e.getMemberId();
  m.role = e.getRole();
  m.data_endpoint = e.getDataEndpoint();
  m.data_curve_key = e.getDataCurveKey();
  m.routing_id = routing_id_of(e);
  return m;
}

}  // namespace

SchedulerActor::SchedulerActor(ZmqContext& ctx, const CoordinatorSettings& settings, const JobState& replayed)
    : Actor(ctx, actors::kScheduler, settings.heartbeat, {actors::kGateway}),
      generation_(replayed.generation),
      ranks_(replayed.ranks),
      resume_(replayed.last_commit) {
  for (const auto& [id, m] : replayed.members) (m.role == proto::Role::LOADER ? loaders_ : workers_)[id] = m;
}

void SchedulerActor::handle(const std::string& from, const InMessage& message) {
  const auto body = message.body();
  switch (message.which()) {
    case Body::MEMBER_JOINED: {
      const JournalMember m = from_event(body.getMemberJoined());
      if (m.role == proto::Role::LOADER) {
        loaders_[m.member_id] = m;
        replan();
      } else if (m.role == proto::Role::WORKER) {
        workers_[m.member_id] = m;
        // The generation can form before this actor hears of the join (the events come from
        // different actors): a ranked worker's plan, and its loaders', went out without it.
        if (std::find(ranks_.begin(), ranks_.end(), m.member_id) != ranks_.end()) replan();
      }
      return;
    }
    case Body::MEMBER_REATTACHED: {
      const JournalMember m = from_event(body.getMemberReattached());
      for (auto* group : {&loaders_, &workers_}) {
        auto it = group->find(m.member_id);
        if (it != group->end()) it->second.routing_id = m.routing_id;
      }
      return;
    }
    case Body::MEMBER_LOST: {
      const uint64_t id = body.getMemberLost().getMemberId();
      workers_.erase(id);
      // A lost loader's workers get the remaining loaders until its replacement registers.
      if (loaders_.erase(id) > 0) replan();
      return;
    }
    case Body::GENERATION_FORMED: {
      const auto g = body.getGenerationFormed();
      generation_ = g.getGeneration();
      ranks_ = to_vector(g.getMemberIds());
      replan();
      return;
    }
    case Body::ABORT:
      generation_ = body.getAbort().getGeneration();
      ranks_.clear();
      return;
    case Body::CHECKPOINT_COMMIT: {
      const auto c = body.getCheckpointCommit();
      resume_ = JournalCommit{c.getGeneration(), c.getStep(), c.getPath(), c.getEpoch(), c.getDataCursor()};
      return;
    }
    default:
      fail(ErrorKind::Internal, "scheduler does not handle ", body_name(message.which()));
  }
}

void SchedulerActor::replan() {
  if (ranks_.empty()) return;  // no group yet: loaders wait for the next generation's plan
  const uint32_t world = static_cast<uint32_t>(ranks_.size());
  // Sticky and balanced: a loader keeps its rank while that rank exists, so a lost or new loader
  // changes the feeders of one worker only; new loaders go to the ranks with the fewest, and a
  // rank with two more than another gives up its newest.
  std::vector<std::vector<uint64_t>> feeders(world);
  for (auto it = placed_.begin(); it != placed_.end();) {
    if (!loaders_.count(it->first) || it->second >= world) {
      it = placed_.erase(it);
    } else {
      feeders[it->second].push_back(it->first);
      ++it;
    }
  }
  auto fewest = [&] {
    return static_cast<uint32_t>(std::min_element(feeders.begin(), feeders.end(),
                                                  [](const auto& a, const auto& b) { return a.size() < b.size(); }) -
                                 feeders.begin());
  };
  for (const auto& [id, loader] : loaders_) {
    if (placed_.count(id)) continue;
    const uint32_t rank = fewest();
    placed_[id] = rank;
    feeders[rank].push_back(id);
  }
  for (;;) {
    const auto most = std::max_element(feeders.begin(), feeders.end(),
                                       [](const auto& a, const auto& b) { return a.size() < b.size(); });
    const uint32_t to = fewest();
    if (most->size() < feeders[to].size() + 2) break;
    const uint64_t moved = *std::max_element(most->begin(), most->end());
    most->erase(std::find(most->begin(), most->end(), moved));
    feeders[to].push_back(moved);
    placed_[moved] = to;
  }
  const uint32_t count = static_cast<uint32_t>(loaders_.size());
  for (uint32_t rank = 0; rank < world; ++rank) {
    std::sort(feeders[rank].begin(), feeders[rank].end());
    auto worker = workers_.find(ranks_[rank]);
    for (size_t k = 0; k < feeders[rank].size(); ++k) {
      OutMessage out;
      auto plan = out.body().initShardPlan();
      plan.setGeneration(generation_);
      plan.setEpoch(resume_.epoch);
      plan.setCursor(resume_.data_cursor);
      plan.setLoaderIndex(static_cast<uint32_t>(k));
      plan.setLoaderCount(static_cast<uint32_t>(feeders[rank].size()));
      plan.setWorkerRank(static_cast<int32_t>(rank));
      plan.setWorldSize(world);
      if (worker != workers_.end()) {
        plan.setWorkerEndpoint(worker->second.data_endpoint);
        plan.setWorkerCurveKey(worker->second.data_curve_key);
      }
      send_to_peer(loaders_.at(feeders[rank][k]).routing_id, out.bytes());
    }
  }
  for (uint32_t rank = 0; rank < world; ++rank) {
    auto worker = workers_.find(ranks_[rank]);
    if (worker == workers_.end()) continue;
    OutMessage out;
    auto plan = out.body().initShardPlan();
    plan.setGeneration(generation_);
    plan.setEpoch(resume_.epoch);
    plan.setCursor(resume_.data_cursor);
    plan.setLoaderCount(static_cast<uint32_t>(feeders[rank].size()));
    plan.setWorkerRank(static_cast<int32_t>(rank));
    plan.setWorldSize(world);
    plan.setWorkerEndpoint(worker->second.data_endpoint);
    plan.setWorkerCurveKey(worker->second.data_curve_key);
    auto ids = plan.initLoaderMemberIds(static_cast<unsigned>(feeders[rank].size()));
    for (size_t i = 0; i < feeders[rank].size(); ++i) ids.set(static_cast<unsigned>(i), feeders[rank][i]);
    send_to_peer(worker->second.routing_id, out.bytes());
  }
  spdlog::info("shard plan for generation {}: {} loader(s) over {} worker(s), cursor {} (epoch {})", generation_, count,
               world, resume_.data_cursor, resume_.epoch);
}

}  // namespace harvest::coord
