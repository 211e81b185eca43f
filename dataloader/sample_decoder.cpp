#include "dataloader/sample_decoder.hpp"

#include <spdlog/spdlog.h>

#include "dataloader/rng.hpp"
#include "model/tokenizer/tokenizer.hpp"

namespace harvest::data {

ClipOptions train_clip_options(const Config& config) {
  ClipOptions options;
  options.frames = config.model.frames;
  options.out_width = options.out_height = static_cast<int>(config.model.image_size);
  options.sampling = Sampling::Random;
  options.train_augment = true;
  options.crop.scale_min = config.data.crop_scale_min;
  options.crop.scale_max = config.data.crop_scale_max;
  options.flip = config.data.flip;
  options.sampling_fps = config.data.sampling_fps;
  options.reader.max_resolution = config.data.max_resolution;
  options.reader.timeout_s = config.data.decode_timeout_s;
  return options;
}

SampleDecoder::SampleDecoder(const Config& config, std::shared_ptr<const Manifest> manifest,
                             std::shared_ptr<const tokenizer::Tokenizer> tokenizer)
    : manifest_(std::move(manifest)),
      tokenizer_(std::move(tokenizer)),
      options_(train_clip_options(config)),
      seed_(static_cast<uint64_t>(config.train.seed)),
      context_(config.model.context_length),
      clip_bytes_(static_cast<size_t>(config.model.frames * config.model.image_size *
                                      config.model.image_size * 3)) {
  HARVEST_ASSERT(manifest_ && tokenizer_, "sample decoder needs a manifest and a tokenizer");
}

DecodedSample SampleDecoder::decode(uint64_t index, uint64_t epoch) const {
  HARVEST_ASSERT(index < manifest_->entries.size(), "sample ", index, " past the ",
                 manifest_->entries.size(), " rows of ", manifest_->path);
  const ManifestEntry& entry = manifest_->entries[index];
  SampleRng rng = SampleRng::for_sample(seed_, epoch, index);
  DecodedSample sample;
  try {
    Clip clip = decode_clip(manifest_->video_path(entry), options_, rng, entry.start, entry.end);
    HARVEST_ASSERT(clip.pixels.size() == clip_bytes_, "decoded clip has ", clip.pixels.size(),
                   " bytes, expected ", clip_bytes_);
    sample.pixels = std::move(clip.pixels);
  } catch (const BadVideo& e) {
    sample.bad = e.reason();
    sample.bad_message = cat(manifest_->path, ":", entry.line, ": ", e.what());
    return sample;
  }
  const std::string& caption = entry.captions[rng.next() % entry.captions.size()];
  sample.ids = tokenizer_->encode(caption, static_cast<size_t>(context_));
  return sample;
}

void SkipTally::record(uint64_t index, BadReason reason, const std::string& message) {
  ++counts_[to_string(reason)];
  if (logged_.insert(index).second) spdlog::warn("skipping sample {}: {}", index, message);
}

void SkipTally::add(const std::string& reason, int64_t count) {
  counts_[reason] += count;
}

int64_t SkipTally::total() const {
  int64_t n = 0;
  for (const auto& [reason, count] : counts_) n += count;
  return n;
}

}  // namespace harvest::data
