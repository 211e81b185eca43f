// ManifestSource: batches decoded inside the worker process from a manifest (data.loaders_per_worker
// = 0: tests and `harvest train`). Deterministic whatever the thread timing: the EpochSampler fixes
// which samples this rank reads, SampleRng::for_sample(seed, epoch, index) fixes frame times,
// crop, flip and caption choice, and batches are assembled in sampler order. Decoding runs ahead
// on a thread pool (data.decode_threads, data.queue_depth batches) so the step rarely waits.
// A sample that cannot be decoded is skipped by rule (the next index of this rank's shard),
// counted per reason and logged once.
#pragma once

#include <deque>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "core/config/config.hpp"
#include "dataloader/manifest.hpp"
#include "dataloader/sampler.hpp"
#include "model/tokenizer/tokenizer.hpp"
#include "worker/batch_source.hpp"

namespace harvest {

class ManifestSource final : public BatchSource {
 public:
  ManifestSource(const Config& config, const tokenizer::Tokenizer& tokenizer, int rank, int world_size,
                 data::SamplerState start = {});
  ~ManifestSource() override;

  HostBatch next() override;

  // Sampler position after the batches handed out so far (for checkpoints), as JSON.
  std::string state() const;
  static data::SamplerState parse_state(const std::string& json);
  uint64_t dataset_size() const { return manifest_.entries.size(); }
  uint64_t epoch() const { return handed_out_.epoch; }
  std::map<std::string, int64_t> bad_counts() const;

 private:
  struct Sample {
    std::vector<uint8_t> pixels;
    std::vector<int32_t> ids;
    std::string bad_reason;  // non-empty: skipped
  };
  struct Pending {
    std::future<Sample> sample;
    data::SamplerState after;  // sampler state once this sample is consumed
  };
  void schedule_sample();
  uint64_t next_index();
  Sample load(uint64_t index, uint64_t epoch) const;

  Config config_;
  const tokenizer::Tokenizer& tokenizer_;
  data::Manifest manifest_;
  int rank_, world_;
  data::EpochSampler sampler_;
  data::SamplerState handed_out_;
  std::deque<Pending> queue_;
  class Pool;
  std::unique_ptr<Pool> pool_;
  mutable std::mutex bad_mutex_;
  mutable std::map<std::string, int64_t> bad_;  // counts per reason, updated by decode threads
};

}  // namespace harvest
