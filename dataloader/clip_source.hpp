// ClipSource: a rank's stream of decoded samples for one epoch. Bad videos are skipped by rule —
// the next sample of this rank's shard takes their place — counted per BadReason and logged once
// per file, so a bad file never stops training and never passes silently.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "dataloader/bad_video.hpp"
#include "dataloader/clip_decoder.hpp"
#include "dataloader/manifest.hpp"
#include "dataloader/sampler.hpp"

namespace harvest::data {

struct SkipCounts {
  std::array<int64_t, kBadReasonCount> by_reason{};
  int64_t total() const;
};

struct Sample {
  uint64_t index = 0;  // manifest entry
  Clip clip;
  const ManifestEntry* entry = nullptr;  // owned by the manifest
};

class ClipSource {
 public:
  // `sampler` and `manifest` are borrowed and must outlive the source.
  ClipSource(const Manifest& manifest, ClipOptions options, uint64_t seed, EpochSampler& sampler);

  // The next good sample of this rank's shard, or nullopt at the end of the epoch.
  std::optional<Sample> next();
  const SkipCounts& skips() const { return skips_; }

 private:
  const Manifest& manifest_;
  ClipOptions options_;
  uint64_t seed_;
  EpochSampler& sampler_;
  SkipCounts skips_;
  std::unordered_set<uint64_t> logged_;
};

}  // namespace harvest::data
