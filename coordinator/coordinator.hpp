// Coordinator: wires the actors of the control plane around one ZeroMQ context. main() (the
// `harvest coordinator` command, the launcher, tests) owns it and calls run().
#pragma once

#include <atomic>
#include <memory>

#include "coordinator/committer.hpp"
#include "coordinator/gateway.hpp"
#include "coordinator/journal.hpp"
#include "coordinator/membership.hpp"
#include "coordinator/rendezvous.hpp"
#include "coordinator/scheduler.hpp"
#include "coordinator/sweeper.hpp"
#include "coordinator/settings.hpp"

namespace harvest::coord {

class Coordinator {
 public:
  // Replays the journal, binds the endpoint (throws Runtime naming it when it cannot), starts
  // every actor.
  explicit Coordinator(const CoordinatorSettings& settings);
  ~Coordinator();
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  std::string endpoint() const { return gateway_->bound_endpoint(); }
  uint64_t incarnation() const { return incarnation_; }

  // Blocks until `stop` becomes non-zero (a signal handler sets it) or an actor dies. Returns the
  // process exit status: 0 when stopped, 1 when an actor failed.
  int run(const std::atomic<int>& stop);

 private:
  CoordinatorSettings settings_;
  uint64_t incarnation_;
  ZmqContext ctx_;  // declared first: destroyed after every socket
  std::unique_ptr<ZapActor> zap_;
  std::unique_ptr<JournalActor> journal_;
  std::unique_ptr<MembershipActor> membership_;
  std::unique_ptr<RendezvousActor> rendezvous_;
  std::unique_ptr<SchedulerActor> scheduler_;
  std::unique_ptr<SweeperActor> sweeper_;
  std::unique_ptr<CheckpointCommitter> committer_;
  std::unique_ptr<GatewayActor> gateway_;
};

}  // namespace harvest::coord
