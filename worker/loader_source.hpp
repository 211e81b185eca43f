// LoaderSource: batches from this worker's loader processes (data.loaders_per_worker > 0;
// docs/data.md "Loader processes"). It starts `harvest loader` N times, binds one ROUTER per
// loader at ipc://<run_dir>/loaders/..., grants each loader data.queue_depth batches of credit
// (so at most that many of a loader's batches are ever queued or in flight) and reads the shard
// stream in global batch order: batch g comes from loader g mod N, whatever finishes first.
//
// Loader batches are fixed spans of the shard (data.batch_size positions) with bad samples
// listed, not replaced; next() applies the skip rule (the next sample of the shard) while it
// assembles training batches, so the batches equal ManifestSource's for the same config, seed
// and start. A shadow EpochSampler walks the same stream: every sample id is checked against it,
// and it gives the (epoch, cursor) for checkpoints and for restarts. A loader that exits, or
// sends nothing for data.loader_timeout_s while its batch is awaited, is killed and started
// again at the first batch of its not yet received, so no sample is lost or repeated.
// Anything malformed from a loader is an error naming the loader and its endpoint.
//
// With a LoaderHub (data.loader_placement = coordinator) it starts nothing: the loaders are the
// ones the coordinator's ShardPlan lists for this worker, reached through the hub's one TCP
// socket. Whenever that list changes, or an awaited loader stays silent for
// data.loader_timeout_s, it re-deals: from the first batch not yet received, loader j of the n
// it now has builds batches first + j, first + j + n, ... under a new incarnation (LoaderControl
// start); received batches after that point are dropped and built again. Batches stay the same
// whatever the loaders do, so the run is the one a worker-placed run gives.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/config/config.hpp"
#include "dataloader/batch_wire.hpp"
#include "dataloader/sampler.hpp"
#include "worker/shard_source.hpp"

namespace harvest {
class LoaderHub;
namespace coord {
class ZmqContext;
class ZmqSocket;
}  // namespace coord

struct LoaderSourceOptions {
  std::string exe;         // the harvest binary; empty: this process's own executable
  std::string socket_dir;  // folder for the ipc sockets and the loaders' config; empty:
                           // <logging.run_dir>/loaders
  std::shared_ptr<LoaderHub> hub;  // set: the coordinator places the loaders (nothing started)
};

class LoaderSource final : public ShardSource {
 public:
  LoaderSource(const Config& config, int rank, int world_size, data::SamplerState start = {},
               LoaderSourceOptions options = {});
  ~LoaderSource() override;  // stops the loaders (SIGTERM, then SIGKILL) and removes the sockets

  HostBatch next() override;

  // Sampler position after the batches handed out so far, as ManifestSource::state() gives it.
  std::string state() const override;
  uint64_t dataset_size() const override { return dataset_size_; }
  uint64_t epoch() const override { return handed_out_.epoch; }
  std::map<std::string, int64_t> bad_counts() const override { return bad_; }

  // Diagnostics.
  int64_t restarts() const { return restarts_; }
  int64_t peak_queued() const { return peak_queued_; }  // most batches one loader had queued here
  std::vector<pid_t> loader_pids() const;
  std::string endpoint(int loader) const;

 private:
  using Clock = std::chrono::steady_clock;
  struct Loader {
    int index = 0;
    std::string endpoint;
    std::unique_ptr<coord::ZmqSocket> own_socket;  // worker-placed: its ROUTER
    coord::ZmqSocket* socket = nullptr;             // own_socket, or the hub's
    uint64_t member_id = 0;                         // coordinator-placed: its member id
    pid_t pid = -1;
    uint64_t generation = 0;     // current incarnation; messages of older ones are dropped
    std::string identity;        // its DEALER routing id, once it said hello
    uint64_t next_expected = 0;  // global index of its next batch
    int64_t queued = 0;          // its batches received and not yet consumed (credit in use)
    int64_t failures = 0;        // restarts since its last batch
    Clock::time_point last_heard;
  };

  std::string peer(const Loader& l) const;
  data::SamplerState position_of(uint64_t global_index) const;
  void spawn(Loader& l);
  // Kills (unless it already exited and was reaped) and starts it again at its next batch.
  void restart(Loader& l, const std::string& why, bool reaped);
  void pump(std::chrono::milliseconds wait, Loader* only = nullptr);
  void handle(Loader& l, std::vector<std::shared_ptr<data::ZmqMessage>> parts);
  void send_credit(Loader& l, uint32_t credit);
  void send_control(Loader& l, const data::LoaderControlMsg& msg);
  // Coordinator-placed loaders.
  void follow_plan();
  void deal(std::vector<uint64_t> members, const std::string& why);
  void send_start(Loader& l);
  void pump_hub(std::chrono::milliseconds wait);
  void handle_hub(std::vector<std::shared_ptr<data::ZmqMessage>> parts);
  Loader& loader_for(uint64_t global_index);
  const data::WireBatch& await(uint64_t global_index);
  void release(uint64_t global_index);

  Config config_;
  LoaderSourceOptions options_;
  int rank_, world_;
  uint64_t dataset_size_ = 0;
  data::BatchShape shape_;
  data::EpochSampler shadow_;  // at the next position to hand out
  uint64_t consumed_ = 0;      // shard positions handed out (good or bad) since `start`
  data::SamplerState handed_out_;
  std::string config_path_;
  std::unique_ptr<coord::ZmqContext> ctx_;
  std::vector<Loader> loaders_;
  std::map<uint64_t, data::WireBatch> received_;
  std::shared_ptr<LoaderHub> hub_;
  uint64_t deal_base_ = 0;       // loader j builds deal_base_ + j, + n, ... (worker-placed: 0)
  uint64_t plan_version_ = 0;    // the hub plan the current deal follows
  bool dealt_ = false;
  std::set<uint64_t> excluded_;  // coordinator-placed loaders dropped for silence
  Clock::time_point unplaced_since_;
  uint64_t generations_ = 0;
  int64_t restarts_ = 0, peak_queued_ = 0;
  // Hub messages ignored (not a placed loader's hello): the first few are logged, then one line
  // per 1000, so a flood cannot fill the log.
  int64_t ignored_ = 0;
  void log_ignored(const std::string& what);
  std::map<std::string, int64_t> bad_;
  BadSampleRate bad_rate_{config_.data.max_bad_fraction};
};

}  // namespace harvest
