// LoaderHub: a worker's door for coordinator-placed loaders (data.loader_placement = coordinator;
// docs/data.md "Loaders placed by the coordinator"). It binds one ROUTER at
// tcp://<dist.host>:<free port> before the worker registers (that endpoint goes to the coordinator
// as the worker's data endpoint), keeps the newest ShardPlan the coordinator sent for this worker
// (posted from the coordinator client's thread), remembers which loader said hello from which
// routing id, and hands out loader incarnation numbers. It lives as long as the worker process;
// the LoaderSource of each generation (or resume) uses it in turn on the training thread. With
// CURVE keys in [coordinator] the endpoint is a CURVE server (docs/data.md "Security").
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/config/config.hpp"

namespace harvest {
namespace coord {
class ZmqContext;
class ZmqSocket;
class ZapActor;
}  // namespace coord

class LoaderHub {
 public:
  explicit LoaderHub(const Config& config);
  ~LoaderHub();
  LoaderHub(const LoaderHub&) = delete;
  LoaderHub& operator=(const LoaderHub&) = delete;

  const std::string& endpoint() const { return endpoint_; }
  // The public key (Z85) the endpoint serves CURVE with; empty when the job has no CURVE keys.
  const std::string& curve_public() const { return curve_public_; }
  coord::ZmqSocket& socket() { return *socket_; }

  struct Plan {
    uint64_t version = 0;     // bumped by every post(); 0: none yet
    uint64_t generation = 0;  // the group generation the plan is for
    std::vector<uint64_t> loaders;  // member ids feeding this worker, in plan order
  };
  // Any thread.
  void post(uint64_t generation, std::vector<uint64_t> loaders);
  Plan plan() const;

  // The coordinator's abort (client thread): generations below `generation` are over, so a
  // source waiting for a batch of one stops waiting (its loaders may be feeding others by now).
  void abort_below(uint64_t generation) {
    uint64_t seen = aborted_below_.load();
    while (seen < generation && !aborted_below_.compare_exchange_weak(seen, generation)) {
    }
  }
  bool aborted(uint64_t generation) const { return aborted_below_.load() > generation; }

  // Training thread only.
  void enter_generation(uint64_t generation) { generation_ = generation; }
  uint64_t generation() const { return generation_; }
  uint64_t next_incarnation() { return ++incarnations_; }
  std::map<uint64_t, std::string>& hellos() { return hellos_; }  // member id -> routing id

 private:
  std::unique_ptr<coord::ZmqContext> ctx_;
  std::unique_ptr<coord::ZapActor> zap_;  // allow-list check; CURVE with authorized keys only
  std::unique_ptr<coord::ZmqSocket> socket_;
  std::string endpoint_;
  std::string curve_public_;
  mutable std::mutex mutex_;
  Plan plan_;
  std::atomic<uint64_t> aborted_below_{0};
  uint64_t generation_ = 0;
  uint64_t incarnations_ = 0;
  std::map<uint64_t, std::string> hellos_;
};

}  // namespace harvest
