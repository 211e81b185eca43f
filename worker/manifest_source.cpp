#include "worker/manifest_source.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <functional>
#include <thread>

#include "core/error.hpp"
#include "dataloader/bad_video.hpp"
#include "dataloader/clip_decoder.hpp"
#include "dataloader/rng.hpp"

namespace harvest {

// A fixed set of decode threads taking tasks in order.
class ManifestSource::Pool {
 public:
  explicit Pool(int threads) {
    for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { loop(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }
  std::future<Sample> submit(std::function<Sample()> task) {
    auto packaged = std::make_shared<std::packaged_task<Sample()>>(std::move(task));
    auto future = packaged->get_future();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      tasks_.push_back([packaged] { (*packaged)(); });
    }
    wake_.notify_one();
    return future;
  }

 private:
  void loop() {
    while (true) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [this] { return stop_ || !tasks_.empty(); });
        if (stop_ && tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> tasks_;
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

ManifestSource::ManifestSource(const Config& config, const tokenizer::Tokenizer& tokenizer, int rank, int world_size,
                               data::SamplerState start)
    : config_(config),
      tokenizer_(tokenizer),
      manifest_(data::load_manifest(config.data.train_manifest, config.data.root)),
      rank_(rank),
      world_(world_size),
      sampler_(manifest_.entries.size(), static_cast<uint64_t>(config.train.seed), world_size, rank, start),
      handed_out_(start),
      pool_(std::make_unique<Pool>(static_cast<int>(config.data.decode_threads))) {
  HARVEST_REQUIRE(manifest_.entries.size() >= static_cast<size_t>(world_size), Config, config.data.train_manifest,
                  ": ", manifest_.entries.size(), " samples cannot feed ", world_size, " workers");
  for (int64_t i = 0; i < config_.data.queue_depth * config_.data.batch_size; ++i) schedule_sample();
}

ManifestSource::~ManifestSource() {
  queue_.clear();  // futures of queued tasks; the pool finishes what it started
  pool_.reset();
}

uint64_t ManifestSource::next_index() {
  auto index = sampler_.next();
  if (!index) {
    sampler_.next_epoch();
    index = sampler_.next();
  }
  HARVEST_ASSERT(index.has_value(), "sampler gave no index in a fresh epoch");
  return *index;
}

void ManifestSource::schedule_sample() {
  const uint64_t epoch = sampler_.state().epoch;
  const uint64_t index = next_index();
  Pending pending;
  pending.sample = pool_->submit([this, index, epoch] { return load(index, epoch); });
  pending.after = sampler_.state();
  queue_.push_back(std::move(pending));
}

ManifestSource::Sample ManifestSource::load(uint64_t index, uint64_t epoch) const {
  const data::ManifestEntry& entry = manifest_.entries[index];
  data::SampleRng rng = data::SampleRng::for_sample(static_cast<uint64_t>(config_.train.seed), epoch, index);
  data::ClipOptions options;
  options.frames = config_.model.frames;
  options.out_width = options.out_height = static_cast<int>(config_.model.image_size);
  options.sampling = data::Sampling::Random;
  options.train_augment = true;
  options.crop.scale_min = config_.data.crop_scale_min;
  options.crop.scale_max = config_.data.crop_scale_max;
  options.flip = config_.data.flip;
  options.sampling_fps = config_.data.sampling_fps;
  options.reader.max_resolution = config_.data.max_resolution;
  options.reader.timeout_s = config_.data.decode_timeout_s;
  Sample sample;
  try {
    data::Clip clip = data::decode_clip(manifest_.video_path(entry), options, rng, entry.start, entry.end);
    sample.pixels = std::move(clip.pixels);
  } catch (const data::BadVideo& e) {
    sample.bad_reason = data::to_string(e.reason());
    std::lock_guard<std::mutex> lock(bad_mutex_);
    if (bad_[sample.bad_reason]++ == 0) spdlog::warn("skipping bad video {}: {}", manifest_.video_path(entry), e.what());
    return sample;
  }
  const std::string& caption = entry.captions[rng.next() % entry.captions.size()];
  sample.ids = tokenizer_.encode(caption, static_cast<size_t>(config_.model.context_length));
  return sample;
}

HostBatch ManifestSource::next() {
  const int64_t batch = config_.data.batch_size, frames = config_.model.frames, side = config_.model.image_size;
  const int64_t context = config_.model.context_length;
  const auto clip_bytes = static_cast<size_t>(frames * side * side * 3);
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
    Sample s = pending.sample.get();
    handed_out_ = pending.after;
    if (!s.bad_reason.empty()) {
      ++out.bad_samples;
      continue;
    }
    HARVEST_ASSERT(s.pixels.size() == clip_bytes, "decoded clip has ", s.pixels.size(), " bytes, expected ", clip_bytes);
    std::memcpy(out.video[filled].data_ptr(), s.pixels.data(), clip_bytes);
    auto row = out.text[filled];
    for (size_t i = 0; i < s.ids.size(); ++i) row[static_cast<int64_t>(i)] = s.ids[i];
    ++filled;
  }
  return out;
}

std::string ManifestSource::state() const {
  return nlohmann::json{{"epoch", handed_out_.epoch}, {"cursor", handed_out_.cursor}}.dump();
}

data::SamplerState ManifestSource::parse_state(const std::string& json) {
  const auto j = nlohmann::json::parse(json);
  return data::SamplerState{j.at("epoch").get<uint64_t>(), j.at("cursor").get<uint64_t>()};
}

std::map<std::string, int64_t> ManifestSource::bad_counts() const {
  std::lock_guard<std::mutex> lock(bad_mutex_);
  return bad_;
}

}  // namespace harvest
