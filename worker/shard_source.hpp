// ShardSource: a rank's batches from its shard of the training manifest, with the sampler
// position checkpoints need. Two implementations give identical batches for the same config,
// seed and start: ManifestSource (decodes in this process, data.loaders_per_worker = 0) and
// LoaderSource (loader processes, data.loaders_per_worker > 0).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

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

class LoaderHub;

// LoaderSource when data.loaders_per_worker > 0 (started by this worker, or with `hub` the loaders
// the coordinator placed), ManifestSource when 0.
std::unique_ptr<ShardSource> make_shard_source(
    const Config& config, std::shared_ptr<const tokenizer::Tokenizer> tokenizer, int rank,
    int world_size, data::SamplerState start = {}, std::shared_ptr<LoaderHub> hub = {});

}  // namespace harvest
