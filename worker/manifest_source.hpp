// ManifestSource: batches decoded inside the worker process from a manifest
// (data.loaders_per_worker = 0). Deterministic whatever the thread timing: the EpochSampler fixes
// which samples this rank reads, data::SampleDecoder fixes frame times, crop, flip and caption
// choice per (seed, epoch, index), and batches are assembled in sampler order. Decoding runs ahead
// on a data::DecodePool (data.decode_threads, data.queue_depth batches; a hung decode is abandoned
// at the deadline) so the step rarely waits. A sample that cannot be decoded is skipped by rule
// (the next index of this rank's shard), counted per reason and logged once. LoaderSource gives the
// same batches.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <string>

#include "core/config/config.hpp"
#include "dataloader/decode_pool.hpp"
#include "dataloader/sample_decoder.hpp"
#include "dataloader/sampler.hpp"
#include "worker/shard_source.hpp"

namespace harvest {

class ManifestSource final : public ShardSource {
 public:
  ManifestSource(const Config& config, std::shared_ptr<const tokenizer::Tokenizer> tokenizer,
                 int rank, int world_size, data::SamplerState start = {});
  ~ManifestSource() override;

  HostBatch next() override;

  // Sampler position after the batches handed out so far (for checkpoints), as JSON.
  std::string state() const override;
  uint64_t dataset_size() const override { return decoder_->manifest().entries.size(); }
  uint64_t epoch() const override { return handed_out_.epoch; }
  std::map<std::string, int64_t> bad_counts() const override { return skips_.counts(); }

 private:
  struct Pending {
    uint64_t index = 0;
    std::shared_ptr<data::DecodePool::Task> task;
    data::SamplerState after;  // sampler state once this sample is consumed
  };
  void schedule_sample();

  Config config_;
  std::shared_ptr<const data::SampleDecoder> decoder_;
  data::EpochSampler sampler_;
  data::SamplerState handed_out_;
  std::deque<Pending> queue_;
  std::unique_ptr<data::DecodePool> pool_;
  data::SkipTally skips_;
  BadSampleRate bad_rate_{config_.data.max_bad_fraction};
};

}  // namespace harvest
