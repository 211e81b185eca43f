#include "coordinator/membership.hpp"

#include <spdlog/spdlog.h>

namespace harvest::coord {
namespace {

long long ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count();
}

}  // namespace

MembershipActor::MembershipActor(ZmqContext& ctx, const CoordinatorSettings& settings, const JobState& replayed,
                                 uint64_t incarnation)
    : Actor(ctx, actors::kMembership, settings.heartbeat,
            {actors::kGateway, actors::kJournal, actors::kRendezvous, actors::kScheduler, actors::kCommitter,
             actors::kSweeper}),
      settings_(settings),
      incarnation_(incarnation),
      next_member_id_(replayed.next_member_id),
      generation_(replayed.generation),
      world_size_(static_cast<uint32_t>(replayed.ranks.size())),
      last_checkpoint_step_(replayed.last_commit.step),
      last_checkpoint_path_(replayed.last_commit.path) {
  const auto now = Clock::now();
  for (const auto& [id, info] : replayed.members) {
    Member m;
    m.info = info;
    m.reattaching = true;
    m.reported = proto::MemberState::REATTACHING;
    m.last_seen = now;
    m.last_progress = now;
    for (size_t r = 0; r < replayed.ranks.size(); ++r)
      if (replayed.ranks[r] == id) m.rank = static_cast<int32_t>(r);
    members_.emplace(id, m);
  }
}

void MembershipActor::handle(const std::string& from, const InMessage& message) {
  const auto body = message.body();
  switch (message.which()) {
    case Body::REGISTER: return handle_register(from, body.getRegister());
    case Body::HEARTBEAT: return handle_heartbeat(from, body.getHeartbeat());
    case Body::STEP_REPORT: return handle_step_report(from, body.getStepReport());
    case Body::STATUS_REQUEST: return handle_status(from);
    case Body::LEAVE: {
      const auto leave = body.getLeave();
      Member* m = live_member(from, leave.getMemberId());
      if (!m) return;
      if (leave.getClean()) return declare_left(*m, leave.getReason().cStr());
      declare_lost(*m, cat("left: ", leave.getReason().cStr()));
      return;
    }
    case Body::GENERATION_FORMED: {
      const auto formed = body.getGenerationFormed();
      generation_ = formed.getGeneration();
      world_size_ = formed.getWorldSize();
      for (auto& [id, m] : members_) m.rank = -1;
      int32_t rank = 0;
      for (const uint64_t id : formed.getMemberIds()) {
        auto it = members_.find(id);
        if (it != members_.end()) it->second.rank = rank;
        ++rank;
      }
      return;
    }
    case Body::ABORT:
      generation_ = body.getAbort().getGeneration();
      world_size_ = 0;
      for (auto& [id, m] : members_) m.rank = -1;
      return;
    case Body::CHECKPOINT_COMMIT:
      last_checkpoint_step_ = body.getCheckpointCommit().getStep();
      last_checkpoint_path_ = body.getCheckpointCommit().getPath();
      return;
    default:
      fail(ErrorKind::Internal, "membership does not handle ", body_name(message.which()));
  }
}

void MembershipActor::handle_register(const std::string& from, proto::Register::Reader reg) {
  // A peer retries Register until it hears back: the same connection gets the same member.
  for (auto& [id, m] : members_) {
    if (!m.lost && m.info.routing_id == from) {
      m.last_seen = Clock::now();
      send_assign(m);
      return;
    }
  }
  Member m;
  m.info.member_id = next_member_id_++;
  m.info.role = reg.getRole();
  m.info.host = reg.getHost();
  m.info.pid = reg.getPid();
  m.info.device = reg.getDevice();
  m.info.desired_rank = reg.getDesiredRank();
  m.info.data_endpoint = reg.getDataEndpoint();
  m.info.data_curve_key = reg.getDataCurveKey();
  m.info.routing_id = from;
  m.last_seen = m.last_progress = Clock::now();
  auto& stored = members_.emplace(m.info.member_id, m).first->second;
  spdlog::info("member {} joined: {} {} pid {} device '{}'{}", stored.info.member_id, role_name(stored.info.role),
               stored.info.host, stored.info.pid, stored.info.device,
               reg.getMemberId() != 0 ? cat(" (was member ", reg.getMemberId(), ")") : std::string());
  broadcast_event(Body::MEMBER_JOINED, stored, "");
  send_assign(stored);
  // A loader restarted after the end (its launcher did not know yet) has nothing to feed.
  if (finished_ && stored.info.role == proto::Role::LOADER)
    send_shutdown(stored, cat("training finished at step ", last_checkpoint_step_), /*graceful=*/true);
}

void MembershipActor::send_shutdown(const Member& member, const std::string& reason, bool graceful) {
  OutMessage out;
  auto shutdown = out.body().initShutdown();
  shutdown.setReason(reason);
  shutdown.setGraceful(graceful);
  send_to_peer(member.info.routing_id, out.bytes());
}

void MembershipActor::check_finished() {
  if (!finished_) {
    if (!settings_.is_final_step(last_checkpoint_step_)) return;
    for (const auto& [id, m] : members_)
      if (!m.lost && m.info.role == proto::Role::WORKER) return;
    finished_ = true;
    size_t loaders = 0;
    for (const auto& [id, m] : members_) {
      if (m.lost || m.info.role != proto::Role::LOADER) continue;
      send_shutdown(m, cat("training finished at step ", last_checkpoint_step_), /*graceful=*/true);
      ++loaders;
    }
    spdlog::info("training finished: step {} is committed and no worker is left; {} loader(s) told to stop",
                 last_checkpoint_step_, loaders);
  }
  for (const auto& [id, m] : members_)
    if (!m.lost) return;
  if (!job_done_.exchange(true)) spdlog::info("job done: every member has left");
}

void MembershipActor::handle_heartbeat(const std::string& from, proto::Heartbeat::Reader hb) {
  Member* m = live_member(from, hb.getMemberId());
  if (!m) return;
  const auto now = Clock::now();
  if (m->reattaching) {
    spdlog::info("member {} ({} pid {}) reattached after {} ms", m->info.member_id, role_name(m->info.role),
                 m->info.pid, ms_between(m->last_seen, now));
    m->reattaching = false;
    broadcast_event(Body::MEMBER_REATTACHED, *m, "");
  }
  m->last_seen = now;
  if (hb.getStep() != m->step || hb.getState() != m->reported) m->last_progress = now;
  m->step = hb.getStep();
  m->generation = hb.getGeneration();
  m->reported = hb.getState();
  m->samples_per_sec = hb.getMetrics().getSamplesPerSec();
  OutMessage ack;
  auto body = ack.body().initHeartbeatAck();
  body.setGeneration(generation_);
  body.setIncarnation(incarnation_);
  send_to_peer(from, ack.bytes());
}

void MembershipActor::handle_step_report(const std::string& from, proto::StepReport::Reader report) {
  Member* m = live_member(from, report.getMemberId());
  if (!m) return;
  const auto now = Clock::now();
  m->last_seen = now;
  if (report.getStep() != m->step) m->last_progress = now;
  m->step = report.getStep();
  m->samples_per_sec = report.getMetrics().getSamplesPerSec();
}

MembershipActor::Member* MembershipActor::live_member(const std::string& from, uint64_t member_id) {
  // Member id 0: a peer that has not seen its assign yet (a sweeper's shutdown or evalJob, sent by
  // another actor, can overtake it), answering on the connection it registered on.
  if (member_id == 0)
    for (const auto& [id, m] : members_)
      if (!m.lost && m.info.routing_id == from) member_id = id;
  auto it = members_.find(member_id);
  if (it == members_.end() || it->second.lost) {
    send_to_peer(from, error_message(proto::ErrorKind::UNKNOWN_MEMBER,
                                     cat("member ", member_id, " is not part of this job: register again")));
    return nullptr;
  }
  // Routing ids are fixed for a peer's lifetime (it sets its own), so a message naming a member
  // from another connection is a confused or spoofing peer.
  if (it->second.info.routing_id != from) {
    send_to_peer(from, error_message(proto::ErrorKind::REJECTED,
                                     cat("member ", member_id, " is registered from another connection")));
    return nullptr;
  }
  return &it->second;
}

void MembershipActor::send_assign(const Member& m) {
  OutMessage out;
  auto assign = out.body().initAssign();
  assign.setMemberId(m.info.member_id);
  assign.setRank(m.rank);
  assign.setWorldSize(m.rank >= 0 ? world_size_ : 0);
  assign.setGeneration(generation_);
  assign.setHeartbeatMs(static_cast<uint32_t>(settings_.heartbeat.count()));
  assign.setMissLimit(static_cast<uint32_t>(settings_.miss_limit));
  send_to_peer(m.info.routing_id, out.bytes());
}

void MembershipActor::broadcast_event(Body::Which kind, const Member& m, const std::string& reason, bool clean) {
  OutMessage out;
  proto::MemberEvent::Builder e = kind == Body::MEMBER_JOINED   ? out.body().initMemberJoined()
                                  : kind == Body::MEMBER_LOST   ? out.body().initMemberLost()
                                                                : out.body().initMemberReattached();
  e.setMemberId(m.info.member_id);
  e.setRole(m.info.role);
  e.setHost(m.info.host);
  e.setPid(m.info.pid);
  e.setDevice(m.info.device);
  e.setDesiredRank(m.info.desired_rank);
  e.setDataEndpoint(m.info.data_endpoint);
  e.setDataCurveKey(m.info.data_curve_key);
  e.setRoutingId(kj::arrayPtr(reinterpret_cast<const kj::byte*>(m.info.routing_id.data()), m.info.routing_id.size()));
  e.setReason(reason);
  e.setClean(clean);
  const std::string bytes = out.bytes();
  // The journal first: a restarted coordinator must never forget a member it told others about.
  if (kind != Body::MEMBER_REATTACHED) send_to(actors::kJournal, bytes);
  send_to(actors::kRendezvous, bytes);
  send_to(actors::kScheduler, bytes);
  send_to(actors::kCommitter, bytes);
  send_to(actors::kSweeper, bytes);
}

void MembershipActor::declare_lost(Member& m, const std::string& reason) {
  m.lost = true;
  m.reported = proto::MemberState::LOST;
  spdlog::warn("member {} ({} rank {} {} pid {}) lost: {}", m.info.member_id, role_name(m.info.role), m.rank,
               m.info.host, m.info.pid, reason);
  broadcast_event(Body::MEMBER_LOST, m, reason);
}

void MembershipActor::declare_left(Member& m, const std::string& reason) {
  m.lost = true;  // no longer live: heartbeats and deadlines stop applying
  m.reported = proto::MemberState::LEFT;
  spdlog::info("member {} ({} rank {} {} pid {}) left: {}", m.info.member_id, role_name(m.info.role), m.rank,
               m.info.host, m.info.pid, reason);
  broadcast_event(Body::MEMBER_LOST, m, reason, /*clean=*/true);
}

void MembershipActor::on_tick() {
  const auto now = Clock::now();
  for (auto& [id, m] : members_) {
    if (m.lost) continue;
    const long long silent = ms_between(m.last_seen, now);
    if (m.reattaching) {
      if (silent > settings_.reattach_grace.count())
        declare_lost(m, cat("did not reattach within ", silent, " ms of the coordinator restart"));
    } else if (silent > settings_.lost_after().count()) {
      declare_lost(m, cat("no heartbeat for ", silent, " ms (limit ", settings_.lost_after().count(), " ms = ",
                          settings_.miss_limit, " x ", settings_.heartbeat.count(), " ms)"));
    } else if (m.info.role == proto::Role::WORKER && m.reported == proto::MemberState::RUNNING &&
               now - m.last_progress > settings_.step_deadline) {
      send_shutdown(m, cat("hung: no step progress for ", ms_between(m.last_progress, now), " ms"),
                    /*graceful=*/false);
      declare_lost(m, cat("hung: heartbeats arrive but step ", m.step, " has not advanced for ",
                          ms_between(m.last_progress, now), " ms (coordinator.step_deadline_s)"));
    }
  }
  check_finished();
}

void MembershipActor::handle_status(const std::string& from) {
  OutMessage out;
  auto reply = out.body().initStatusReply();
  reply.setGeneration(generation_);
  reply.setWorldSize(world_size_);
  reply.setIncarnation(incarnation_);
  reply.setLastCheckpointStep(last_checkpoint_step_);
  reply.setLastCheckpointPath(last_checkpoint_path_);
  reply.setUptimeS(uptime_.seconds());
  uint64_t step = 0;
  double throughput = 0;
  size_t ranked = 0, running = 0;
  const auto now = Clock::now();
  auto list = reply.initMembers(static_cast<unsigned>(members_.size()));
  unsigned i = 0;
  for (const auto& [id, m] : members_) {
    auto s = list[i++];
    s.setMemberId(id);
    s.setRole(m.info.role);
    s.setRank(m.lost ? -1 : m.rank);
    s.setHost(m.info.host);
    s.setPid(m.info.pid);
    s.setDevice(m.info.device);
    s.setState(m.reported);
    s.setGeneration(m.generation);
    s.setStep(m.step);
    s.setLastSeenMs(static_cast<uint64_t>(std::max(0LL, ms_between(m.last_seen, now))));
    s.setSamplesPerSec(m.samples_per_sec);
    if (!m.lost && m.rank >= 0 && m.info.role == proto::Role::WORKER) {
      ++ranked;
      step = std::max(step, m.step);
      throughput += m.samples_per_sec;
      if (m.reported == proto::MemberState::RUNNING && m.generation == generation_) ++running;
    }
  }
  reply.setStep(step);
  reply.setSamplesPerSec(throughput);
  reply.setPhase(finished_ ? "finished"
                 : ranked == 0 ? "waiting"
                 : running == ranked && ranked == world_size_ ? "running"
                               : "forming");
  send_to_peer(from, out.bytes());
}

}  // namespace harvest::coord
