#include "coordinator/coordinator.hpp"

#include <spdlog/spdlog.h>

#include <random>
#include <thread>

#include "coordinator/curve.hpp"

namespace harvest::coord {

Coordinator::Coordinator(const CoordinatorSettings& settings)
    : settings_(settings), incarnation_(std::random_device{}() | (uint64_t{std::random_device{}()} << 32)) {
  const JobState job = replay_journal(settings.journal);
  if (job.records > 0)
    spdlog::info("journal {}: replayed {} record(s): {} live member(s), generation {}, last commit step {}",
                 settings.journal, job.records, job.members.size(), job.generation, job.last_commit.step);
  if (!settings.curve_server_secret.empty()) {
    // The handler must be bound before the first CURVE handshake.
    std::set<std::string> authorized;
    if (!settings.curve_authorized_keys.empty()) authorized = read_authorized_keys(settings.curve_authorized_keys);
    zap_ = std::make_unique<ZapActor>(ctx_, settings.heartbeat, std::move(authorized));
    zap_->start();
  }
  journal_ = std::make_unique<JournalActor>(ctx_, settings.heartbeat, settings.journal);
  membership_ = std::make_unique<MembershipActor>(ctx_, settings, job, incarnation_);
  rendezvous_ = std::make_unique<RendezvousActor>(ctx_, settings, job);
  scheduler_ = std::make_unique<SchedulerActor>(ctx_, settings, job);
  committer_ = std::make_unique<CheckpointCommitter>(ctx_, settings, job);
  sweeper_ = std::make_unique<SweeperActor>(ctx_, settings, job);
  gateway_ = std::make_unique<GatewayActor>(ctx_, settings);
  journal_->start();
  membership_->start();
  rendezvous_->start();
  scheduler_->start();
  committer_->start();
  sweeper_->start();
  gateway_->start();
  spdlog::info("coordinator listening on {} (incarnation {:016x}, heartbeat {} ms, lost after {} ms, journal {}{})",
               endpoint(), incarnation_, settings.heartbeat.count(), settings.lost_after().count(), settings.journal,
               zap_ ? ", CURVE on" : "");
}

Coordinator::~Coordinator() {
  // The network side first, so no new work arrives while the rest shuts down.
  for (Actor* a : std::initializer_list<Actor*>{gateway_.get(), sweeper_.get(), committer_.get(), scheduler_.get(),
                                                 rendezvous_.get(), membership_.get(), journal_.get(), zap_.get()})
    if (a) a->stop();
}

int Coordinator::run(const std::atomic<int>& stop) {
  const std::initializer_list<Actor*> all{gateway_.get(), sweeper_.get(), committer_.get(), scheduler_.get(),
                                          rendezvous_.get(), membership_.get(), journal_.get()};
  while (stop.load() == 0) {
    for (Actor* a : all) {
      if (!a->healthy()) {
        spdlog::critical("coordinator: actor {} failed; shutting down", a->name());
        return 1;
      }
    }
    if (settings_.exit_when_done && membership_->job_done()) {
      spdlog::info("coordinator: training finished and every member has left; exiting "
                   "(coordinator.exit_when_done)");
      return 0;
    }
    std::this_thread::sleep_for(settings_.heartbeat);
  }
  spdlog::info("coordinator: stopping (signal {})", stop.load());
  return 0;
}

}  // namespace harvest::coord
