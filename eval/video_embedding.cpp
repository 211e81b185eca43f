#include "eval/video_embedding.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstring>
#include <deque>

#include "core/error.hpp"
#include "core/time.hpp"
#include "dataloader/bad_video.hpp"
#include "dataloader/clip_decoder.hpp"
#include "dataloader/decode_pool.hpp"
#include "dataloader/progress_bar.hpp"

namespace harvest::eval {

struct EtaReporter::Impl {
  std::string label;
  int64_t total;
  bool enabled;
  double every_s;
  data::ProgressBar bar;
  Stopwatch clock;
  double last_log = 0;
  int64_t done = 0;
  bool finished = false;
  bool terminal = ::isatty(STDERR_FILENO) != 0;  // the bar shows progress; no log lines then
  Impl(std::string l, int64_t t, bool e, double every)
      : label(std::move(l)), total(t), enabled(e), every_s(every), bar(label, t, false) {}
};

EtaReporter::EtaReporter(std::string label, int64_t total, bool enabled, double every_s)
    : impl_(std::make_unique<Impl>(std::move(label), total, enabled, every_s)) {}

EtaReporter::~EtaReporter() = default;

void EtaReporter::update(int64_t done) {
  Impl& r = *impl_;
  r.done = done;
  if (!r.enabled) return;
  r.bar.update(done);
  const double now = r.clock.seconds();
  if (r.terminal || now - r.last_log < r.every_s || done >= r.total) return;
  r.last_log = now;
  const double rate = now > 0 ? static_cast<double>(done) / now : 0.0;
  spdlog::info("{}: {}/{} ({:.1f}/s, ETA {:.0f} s)", r.label, done, r.total, rate,
               rate > 0 ? static_cast<double>(r.total - done) / rate : 0.0);
}

void EtaReporter::finish() {
  Impl& r = *impl_;
  if (r.finished || !r.enabled) return;
  r.finished = true;
  r.bar.finish();
  spdlog::debug("{}: {} in {:.1f} s", r.label, r.done, r.clock.seconds());
}

at::Tensor embed_videos(VideoTextModelImpl& model, const std::vector<EvalVideo>& videos,
                        const VideoEmbedOptions& options, VideoEmbedStats* stats) {
  HARVEST_REQUIRE(options.frames >= 1 && options.size >= 1 && options.batch_size >= 1, Usage,
                  "embed_videos: frames ", options.frames, ", size ", options.size, ", batch ",
                  options.batch_size, " (each must be >= 1)");
  const Stopwatch wall;
  VideoEmbedStats local;
  const int64_t n = static_cast<int64_t>(videos.size());
  const int64_t clip_bytes = options.frames * options.size * options.size * 3;

  data::ClipOptions clip;
  clip.frames = options.frames;
  clip.out_width = static_cast<int>(options.size);
  clip.out_height = static_cast<int>(options.size);
  clip.sampling = data::Sampling::Middle;
  clip.train_augment = false;

  data::DecodePool pool(std::max(1, options.decode_threads), options.decode_deadline_s);
  std::deque<std::shared_ptr<data::DecodePool::Task>> queued;
  int64_t submitted = 0;
  // Two batches in flight: the next one decodes while the model embeds this one.
  const int64_t window = 2 * options.batch_size + options.decode_threads;
  auto top_up = [&](int64_t consumed) {
    while (submitted < n && submitted - consumed < window) {
      const EvalVideo video = videos[static_cast<size_t>(submitted)];
      queued.push_back(pool.submit([video, clip] {
        data::SampleRng rng = data::SampleRng::for_sample(0, 0, 0);  // unused by eval sampling
        data::Clip decoded = data::decode_clip(video.path, clip, rng, video.start, video.end);
        data::DecodedSample sample;
        sample.pixels = std::move(decoded.pixels);
        return sample;
      }));
      ++submitted;
    }
  };

  std::vector<at::Tensor> out;
  EtaReporter progress(options.label, n, options.progress);
  torch::NoGradGuard no_grad;
  for (int64_t begin = 0; begin < n; begin += options.batch_size) {
    throw_if_cancelled(options.cancel, cat("at video ", begin, " of ", n));
    const int64_t count = std::min(options.batch_size, n - begin);
    at::Tensor batch = at::empty({count, options.frames, options.size, options.size, 3}, at::kByte);
    top_up(begin);
    const Stopwatch waiting;
    for (int64_t i = 0; i < count; ++i) {
      const EvalVideo& video = videos[static_cast<size_t>(begin + i)];
      data::DecodedSample sample;
      try {
        sample = pool.wait(queued.front());
      } catch (const data::BadVideo& e) {
        fail(ErrorKind::Runtime, video.path, " (manifest line ", video.line,
             "): cannot be evaluated: ", e.what(), "; fix the file or drop it from the manifest");
      }
      queued.pop_front();
      HARVEST_REQUIRE(!sample.bad, Runtime, video.path, " (manifest line ", video.line,
                      "): cannot be evaluated: ", sample.bad_message);
      HARVEST_ASSERT(static_cast<int64_t>(sample.pixels.size()) == clip_bytes, "decoded ",
                     sample.pixels.size(), " bytes for ", video.path, ", expected ", clip_bytes);
      std::memcpy(batch[i].data_ptr(), sample.pixels.data(), sample.pixels.size());
      top_up(begin + i + 1);
    }
    local.decode_wait_s += waiting.seconds();
    const Stopwatch forward;
    const at::Tensor x = normalize_video(batch.to(model.logit_scale.device()), options.norm);
    out.push_back(
        torch::nn::functional::normalize(model.visual->forward(x).embedding,
                                         torch::nn::functional::NormalizeFuncOptions().dim(-1))
            .to(at::kCPU));
    local.forward_s += forward.seconds();
    progress.update(begin + count);
  }
  progress.finish();
  local.clips = n;
  local.seconds = wall.seconds();
  if (stats) *stats = local;
  if (out.empty()) return at::empty({0, model.options().embed_dim});
  return at::cat(out);
}

}  // namespace harvest::eval
