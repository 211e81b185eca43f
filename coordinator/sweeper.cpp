#include "coordinator/sweeper.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace harvest::coord {

SweeperActor::SweeperActor(ZmqContext& ctx, const CoordinatorSettings& settings, const JobState& replayed)
    : Actor(ctx, actors::kSweeper, settings.heartbeat, {actors::kGateway}),
      settings_(settings),
      ranked_(replayed.ranks.begin(), replayed.ranks.end()),
      formed_(!replayed.ranks.empty()),
      final_committed_(settings.is_final_step(replayed.last_commit.step)) {
  check_finished();  // a restart after the end: the workers that come back are told to leave
}

void SweeperActor::handle(const std::string& from, const InMessage& message) {
  const auto body = message.body();
  switch (message.which()) {
    case Body::MEMBER_JOINED:
    case Body::MEMBER_REATTACHED: {
      const auto e = message.which() == Body::MEMBER_JOINED ? body.getMemberJoined() : body.getMemberReattached();
      if (e.getRole() != proto::Role::EVAL && e.getRole() != proto::Role::WORKER) return;
      Evaluator& ev = evaluators_[e.getMemberId()];
      ev.routing_id = routing_id_of(e);
      ev.worker = e.getRole() == proto::Role::WORKER;
      dispatch();
      return;
    }
    case Body::MEMBER_LOST: {
      const uint64_t id = body.getMemberLost().getMemberId();
      ranked_.erase(id);
      auto it = evaluators_.find(id);
      if (it != evaluators_.end()) {
        requeue(it->second, cat(it->second.worker ? "worker " : "eval member ", it->first, " lost"));
        evaluators_.erase(it);
      }
      check_finished();
      dispatch();
      return;
    }
    case Body::GENERATION_FORMED: {
      const auto g = body.getGenerationFormed();
      ranked_.clear();
      for (const uint64_t id : g.getMemberIds()) ranked_.insert(id);
      formed_ = true;
      for (auto& [id, ev] : evaluators_)
        if (ev.worker && ranked_.count(id))
          requeue(ev, cat("spare worker ", id, " was given a rank in generation ", g.getGeneration()));
      dispatch();
      return;
    }
    case Body::ABORT:
      // Also how a generation that every rank left cleanly is closed. Spares keep their jobs;
      // nobody new gets one until the next generation forms (or training is finished).
      formed_ = false;
      check_finished();
      dispatch();
      return;
    case Body::CHECKPOINT_COMMIT: {
      const auto c = body.getCheckpointCommit();
      const auto step = static_cast<int64_t>(c.getStep());
      if (settings_.is_final_step(c.getStep())) final_committed_ = true;
      check_finished();
      if (settings_.eval_every_steps <= 0 || step <= last_queued_step_) return dispatch();
      if (step % settings_.eval_every_steps != 0 && step != settings_.train_steps) return;
      last_queued_step_ = step;
      queue_.push_back(Job{next_job_++, c.getStep(), c.getPath()});
      dispatch();
      return;
    }
    case Body::EVAL_RESULT: {
      const auto r = body.getEvalResult();
      auto job = running_.find(r.getJobId());
      // The sender is known by its connection. Its memberId may still be 0: the job (from this
      // actor) and the member's assign (from membership) reach the gateway on separate pipes, so
      // a job can overtake the assign and a quick answer carries no id yet.
      auto ev = std::find_if(evaluators_.begin(), evaluators_.end(),
                             [&](const auto& e) { return e.second.routing_id == from; });
      if (job == running_.end() || ev == evaluators_.end() || ev->second.job != r.getJobId() ||
          (r.getMemberId() != 0 && r.getMemberId() != ev->first)) {
        spdlog::warn("evalResult for job {} from member {} does not match a job it holds; ignored", r.getJobId(),
                     r.getMemberId());
        return;
      }
      if (r.getError().size() > 0) {
        spdlog::warn("eval of step {} by member {} failed: {}", job->second.step, ev->first,
                     r.getError().cStr());
      } else {
        std::string metrics;
        for (const auto m : r.getMetrics())
          metrics += cat(metrics.empty() ? "" : " ", m.getName().cStr(), "=", m.getValue());
        spdlog::info("eval of step {} by member {}: {}", job->second.step, ev->first, metrics);
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

void SweeperActor::requeue(Evaluator& e, const std::string& why) {
  if (e.job == 0) return;
  auto job = running_.find(e.job);
  e.job = 0;
  if (job == running_.end()) return;
  spdlog::warn("{} during its evaluation of step {}: queued again", why, job->second.step);
  queue_.push_front(job->second);
  running_.erase(job);
}

bool SweeperActor::available(uint64_t member_id, const Evaluator& e) const {
  if (e.job != 0 || e.told_to_leave) return false;
  if (!e.worker) return true;
  return settings_.eval_on_spares && (finished_ || (formed_ && !ranked_.count(member_id)));
}

void SweeperActor::check_finished() {
  if (finished_ || !final_committed_ || formed_ || !ranked_.empty()) return;
  finished_ = true;
  size_t spares = 0;
  for (const auto& [id, ev] : evaluators_) spares += ev.worker ? 1 : 0;
  spdlog::info("training finished at step {}: {} spare worker(s) take the {} queued eval job(s), then leave",
               settings_.train_steps, spares, settings_.eval_on_spares ? queue_.size() : 0);
}

void SweeperActor::hand_out(uint64_t member_id, Evaluator& e) {
  const Job job = queue_.front();
  queue_.pop_front();
  OutMessage out;
  auto m = out.body().initEvalJob();
  m.setJobId(job.id);
  m.setCheckpoint(job.path);
  m.setStep(job.step);
  send_to_peer(e.routing_id, out.bytes());
  e.job = job.id;
  running_[job.id] = job;
  spdlog::info("eval of step {} handed to {} {} (job {}, {} waiting)", job.step,
               e.worker ? "spare worker" : "member", member_id, job.id, queue_.size());
}

void SweeperActor::dispatch() {
  // Eval members first: a spare may be needed for training at any moment.
  for (const bool workers : {false, true})
    for (auto& [id, ev] : evaluators_) {
      if (queue_.empty()) break;
      if (ev.worker == workers && available(id, ev)) hand_out(id, ev);
    }
  if (!finished_) return;
  // After training: a worker with no job and none left for it leaves (exit 0).
  for (auto& [id, ev] : evaluators_) {
    if (!ev.worker || ev.job != 0 || ev.told_to_leave) continue;
    if (settings_.eval_on_spares && !queue_.empty()) continue;
    OutMessage out;
    auto shutdown = out.body().initShutdown();
    shutdown.setReason(cat("training finished at step ", settings_.train_steps));
    shutdown.setGraceful(true);
    send_to_peer(ev.routing_id, out.bytes());
    ev.told_to_leave = true;
    spdlog::info("spare worker {} told to leave: training is finished and no eval job is left for it", id);
  }
}

}  // namespace harvest::coord
