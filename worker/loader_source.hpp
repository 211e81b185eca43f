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
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/config/config.hpp"
#include "dataloader/batch_wire.hpp"
#include "dataloader/sampler.hpp"
#include "worker/shard_source.hpp"

namespace harvest {
namespace coord {
class ZmqContext;
class ZmqSocket;
}  // namespace coord

struct LoaderSourceOptions {
  std::string exe;         // the harvest binary; empty: this process's own executable
  std::string socket_dir;  // folder for the ipc sockets and the loaders' config; empty:
                           // <logging.run_dir>/loaders
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
    std::unique_ptr<coord::ZmqSocket> socket;
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
  uint64_t generations_ = 0;
  int64_t restarts_ = 0, peak_queued_ = 0;
  std::map<std::string, int64_t> bad_;
};

}  // namespace harvest
