#include "coordinator/sweeper.hpp"

#include <spdlog/spdlog.h>

namespace harvest::coord {

SweeperActor::SweeperActor(ZmqContext& ctx, const CoordinatorSettings& settings)
    : Actor(ctx, actors::kSweeper, settings.heartbeat, {actors::kGateway}), settings_(settings) {}

void SweeperActor::handle(const std::string& from, const InMessage& message) {
  const auto body = message.body();
  switch (message.which()) {
    case Body::MEMBER_JOINED:
    case Body::MEMBER_REATTACHED: {
      const auto e = message.which() == Body::MEMBER_JOINED ? body.getMemberJoined() : body.getMemberReattached();
      if (e.getRole() != proto::Role::EVAL) return;
      evaluators_[e.getMemberId()].routing_id = routing_id_of(e);
      dispatch();
      return;
    }
    case Body::MEMBER_LOST: {
      const uint64_t id = body.getMemberLost().getMemberId();
      auto it = evaluators_.find(id);
      if (it == evaluators_.end()) return;
      if (it->second.job != 0) {
        auto job = running_.find(it->second.job);
        if (job != running_.end()) {
          spdlog::warn("eval member {} lost during its evaluation of step {}: queued again", id, job->second.step);
          queue_.push_front(job->second);
          running_.erase(job);
        }
      }
      evaluators_.erase(it);
      dispatch();
      return;
    }
    case Body::CHECKPOINT_COMMIT: {
      const auto c = body.getCheckpointCommit();
      const auto step = static_cast<int64_t>(c.getStep());
      if (settings_.eval_every_steps <= 0 || step <= last_queued_step_) return;
      if (step % settings_.eval_every_steps != 0 && step != settings_.train_steps) return;
      last_queued_step_ = step;
      queue_.push_back(Job{next_job_++, c.getStep(), c.getPath()});
      dispatch();
      return;
    }
    case Body::EVAL_RESULT: {
      const auto r = body.getEvalResult();
      auto job = running_.find(r.getJobId());
      auto ev = evaluators_.find(r.getMemberId());
      if (job == running_.end() || ev == evaluators_.end() || ev->second.job != r.getJobId() ||
          ev->second.routing_id != from) {
        spdlog::warn("evalResult for job {} from member {} does not match a job it holds; ignored", r.getJobId(),
                     r.getMemberId());
        return;
      }
      if (r.getError().size() > 0) {
        spdlog::warn("eval of step {} by member {} failed: {}", job->second.step, r.getMemberId(),
                     r.getError().cStr());
      } else {
        std::string metrics;
        for (const auto m : r.getMetrics())
          metrics += cat(metrics.empty() ? "" : " ", m.getName().cStr(), "=", m.getValue());
        spdlog::info("eval of step {} by member {}: {}", job->second.step, r.getMemberId(), metrics);
      }
      running_.erase(job);
      ev->second.job = 0;
      dispatch();
      return;
    }
    default:
      return;  // other events of the broadcasts this actor is on
  }
}

void SweeperActor::dispatch() {
  for (auto& [id, ev] : evaluators_) {
    if (queue_.empty()) return;
    if (ev.job != 0) continue;
    const Job job = queue_.front();
    queue_.pop_front();
    OutMessage out;
    auto e = out.body().initEvalJob();
    e.setJobId(job.id);
    e.setCheckpoint(job.path);
    send_to_peer(ev.routing_id, out.bytes());
    ev.job = job.id;
    running_[job.id] = job;
    spdlog::info("eval of step {} handed to member {} (job {}, {} waiting)", job.step, id, job.id, queue_.size());
  }
}

}  // namespace harvest::coord
