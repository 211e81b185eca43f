// ShardSource: a rank's batches from its shard of the training manifest, with the sampler
// position checkpoints need. Two implementations give identical batches for the same config,
// seed and start: ManifestSource (decodes in this process, data.loaders_per_worker = 0) and
// LoaderSource (loader processes, data.loaders_per_worker > 0).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/config/config.hpp"
#include "dataloader/sampler.hpp"
#include "worker/batch_source.hpp"

namespace harvest {
namespace tokenizer {
class Tokenizer;
}

class ShardSource : public BatchSource {
 public:
  // Sampler position after the batches handed out so far: {"epoch": E, "cursor": C}.
  virtual std::string state() const = 0;
  virtual uint64_t dataset_size() const = 0;
  virtual uint64_t epoch() const = 0;
  virtual std::map<std::string, int64_t> bad_counts() const = 0;
};

data::SamplerState parse_sampler_state(const std::string& json);

// The share of bad samples among the last `window` a source drew. A manifest whose rows are
// all unusable (missing files, an unterminated CSV quote) used to keep the batch loop skipping
// forever: once the window is full and its bad share exceeds data.max_bad_fraction, the source
// stops with fail_bad_sample_rate. 1 turns the limit off.
class BadSampleRate {
 public:
  explicit BadSampleRate(double max_fraction, size_t window = 1000);
  // Records one sample; true when the window is full and more than max_fraction of it was bad.
  bool exceeded(bool bad);
  double max_fraction() const { return max_fraction_; }
  size_t window() const { return ring_.size(); }

 private:
  std::vector<uint8_t> ring_;
  size_t next_ = 0, seen_ = 0, bad_ = 0;
  double max_fraction_;
};

// Config error naming the manifest, the limit and the commonest reasons in `counts`.
[[noreturn]] void fail_bad_sample_rate(const std::string& manifest, const BadSampleRate& rate,
                                       const std::map<std::string, int64_t>& counts);

class LoaderHub;

// LoaderSource when data.loaders_per_worker > 0 (started by this worker, or with `hub` the loaders
// the coordinator placed), ManifestSource when 0.
std::unique_ptr<ShardSource> make_shard_source(
    const Config& config, std::shared_ptr<const tokenizer::Tokenizer> tokenizer, int rank,
    int world_size, data::SamplerState start = {}, std::shared_ptr<LoaderHub> hub = {});

}  // namespace harvest
