#include "worker/manifest_source.hpp"

#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "dataloader/manifest.hpp"

namespace harvest {

ManifestSource::ManifestSource(const Config& config,
                               std::shared_ptr<const tokenizer::Tokenizer> tokenizer, int rank,
                               int world_size, data::SamplerState start)
    : config_(config),
      decoder_(std::make_shared<const data::SampleDecoder>(
          config,
          std::make_shared<const data::Manifest>(
              data::load_manifest(config.data.train_manifest, config.data.root)),
          std::move(tokenizer))),
      sampler_(decoder_->manifest().entries.size(), static_cast<uint64_t>(config.train.seed),
               world_size, rank, start),
      handed_out_(start),
      // FFmpeg's interrupt callback stops a reader at decode_timeout_s; a decode that ignores it
      // is abandoned one second later.
      pool_(std::make_unique<data::DecodePool>(static_cast<int>(config.data.decode_threads),
                                               config.data.decode_timeout_s + 1.0)) {
  HARVEST_REQUIRE(dataset_size() >= static_cast<uint64_t>(world_size), Config,
                  config.data.train_manifest, ": ", dataset_size(), " samples cannot feed ",
                  world_size, " workers");
  for (int64_t i = 0; i < config_.data.queue_depth * config_.data.batch_size; ++i)
    schedule_sample();
}

ManifestSource::~ManifestSource() {
  queue_.clear();
  pool_.reset();  // waits for running decodes (at most the deadline)
}

void ManifestSource::schedule_sample() {
  Pending pending;
  pending.index = sampler_.next_wrapping();
  const uint64_t epoch = sampler_.state().epoch;  // the epoch this index was drawn from
  pending.task = pool_->submit(
      [decoder = decoder_, index = pending.index, epoch] { return decoder->decode(index, epoch); });
  pending.after = sampler_.state();
  queue_.push_back(std::move(pending));
}

HostBatch ManifestSource::next() {
  const int64_t batch = config_.data.batch_size, frames = config_.model.frames;
  const int64_t side = config_.model.image_size, context = config_.model.context_length;
  const size_t clip_bytes = decoder_->clip_bytes();
  HostBatch out;
  out.video = at::empty({batch, frames, side, side, 3}, at::kByte);
  out.text = at::zeros({batch, context}, at::kLong);
  int64_t filled = 0;
  // Samples in sampler order; a bad one is replaced by the next sample of this rank's shard.
  while (filled < batch) {
    HARVEST_ASSERT(!queue_.empty(), "sample queue ran dry");
    Pending pending = std::move(queue_.front());
    queue_.pop_front();
    schedule_sample();
    data::DecodedSample s = pool_->wait(pending.task);
    handed_out_ = pending.after;
    if (s.bad) skips_.record(pending.index, *s.bad, s.bad_message);
    if (bad_rate_.exceeded(s.bad.has_value()))
      fail_bad_sample_rate(config_.data.train_manifest, bad_rate_, skips_.counts());
    if (s.bad) {
      ++out.bad_samples;
      continue;
    }
    std::memcpy(out.video[filled].data_ptr(), s.pixels.data(), clip_bytes);
    auto* row = out.text[filled].data_ptr<int64_t>();
    for (size_t i = 0; i < s.ids.size() && i < static_cast<size_t>(context); ++i) row[i] = s.ids[i];
    out.sample_ids.push_back(static_cast<int64_t>(pending.index));
    ++filled;
  }
  return out;
}

std::string ManifestSource::state() const {
  return nlohmann::json{{"epoch", handed_out_.epoch}, {"cursor", handed_out_.cursor}}.dump();
}

}  // namespace harvest
