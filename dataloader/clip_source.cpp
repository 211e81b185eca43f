#include "dataloader/clip_source.hpp"

#include <spdlog/spdlog.h>

namespace harvest::data {

int64_t SkipCounts::total() const {
  int64_t n = 0;
  for (int64_t c : by_reason) n += c;
  return n;
}

ClipSource::ClipSource(const Manifest& manifest, ClipOptions options, uint64_t seed,
                       EpochSampler& sampler)
    : manifest_(manifest), options_(std::move(options)), seed_(seed), sampler_(sampler) {}

std::optional<Sample> ClipSource::next() {
  while (auto index = sampler_.next()) {
    HARVEST_ASSERT(*index < manifest_.entries.size(), "sampler index ", *index, " past ",
                   manifest_.entries.size(), " manifest entries");
    const ManifestEntry& e = manifest_.entries[*index];
    SampleRng rng = SampleRng::for_sample(seed_, sampler_.state().epoch, *index);
    try {
      Sample s;
      s.index = *index;
      s.entry = &e;
      s.clip = decode_clip(manifest_.video_path(e), options_, rng, e.start, e.end);
      return s;
    } catch (const BadVideo& bad) {
      ++skips_.by_reason[static_cast<size_t>(bad.reason())];
      if (logged_.insert(*index).second)
        spdlog::warn("skipping sample {} ({}:{}): {}", *index, manifest_.path, e.line, bad.what());
    }
  }
  return std::nullopt;
}

}  // namespace harvest::data
