#include "dataloader/clip_decoder.hpp"

#include <algorithm>
#include <cmath>

#include "dataloader/bad_video.hpp"
#include "dataloader/frame_scaler.hpp"

namespace harvest::data {

Clip decode_clip(const std::string& path, const ClipOptions& options, SampleRng& rng,
                 std::optional<double> start, std::optional<double> end) {
  HARVEST_REQUIRE(options.frames > 0 && options.out_width > 0 && options.out_height > 0, Usage,
                  "clip options: frames ", options.frames, ", size ", options.out_width, "x",
                  options.out_height, " must be positive");
  VideoReader reader(path, options.reader);
  const VideoInfo& info = reader.info();

  TimeSpan span{start.value_or(0.0), end.value_or(info.duration)};
  if (end && *end > info.duration) span.end = info.duration;
  if (span.start < 0 || span.start >= info.duration || (end && *end <= span.start))
    bad_video(BadReason::BadSegment, path, ": segment [", span.start, ", ",
              end.value_or(info.duration), "] s is outside the video's [0, ", info.duration, "] s");

  // Draw in a fixed order (times, crop, flip) so that a seed means the same clip everywhere.
  const std::vector<double> planned =
      sample_times(span, options.frames, options.sampling, options.sampling_fps, rng);
  const int dw = info.display_width(), dh = info.display_height();
  const CropRect crop = options.train_augment ? random_resized_crop(dw, dh, options.crop, rng)
                                              : CropRect{0, 0, dw, dh};
  const bool flip = options.train_augment && options.flip && rng.uniform() < 0.5;

  std::vector<FramePtr> frames;
  const double fps = info.fps > 0 ? info.fps : 25.0;
  const auto span_frames = static_cast<int64_t>(std::floor((span.end - span.start) * fps + 1e-6));
  if (options.sampling_fps <= 0 && span_frames < options.frames) {
    // Fewer frames than T: every frame once, then the last one repeated.
    std::vector<FramePtr> all =
        start && *start > 0 ? reader.frames_at({*start}, VideoReader::After::More)
                            : std::vector<FramePtr>{};
    std::vector<FramePtr> rest = reader.next_frames(static_cast<size_t>(options.frames));
    for (auto& f : rest) {
      const bool inside = reader.time_of(*f) < span.end;
      if ((all.empty() || (inside && f->pts > all.back()->pts))) all.push_back(std::move(f));
    }
    for (int64_t i : short_video_indices(static_cast<int64_t>(all.size()), options.frames))
      frames.push_back(clone_frame(*all[static_cast<size_t>(i)]));
  } else {
    frames = reader.frames_at(planned);
  }

  Clip clip;
  clip.frames = options.frames;
  clip.width = options.out_width;
  clip.height = options.out_height;
  clip.crop = crop;
  clip.flipped = flip;
  clip.info = info;
  const size_t frame_bytes = static_cast<size_t>(clip.width) * clip.height * 3;
  clip.pixels.resize(frame_bytes * static_cast<size_t>(clip.frames));
  FrameScaler scaler;
  for (size_t i = 0; i < frames.size(); ++i) {
    const AVFrame& f = *frames[i];
    // The decoded size can differ from the container's (mid-stream changes): scale the crop.
    CropRect c = crop;
    const int fw = info.rotation % 180 ? f.height : f.width,
              fh = info.rotation % 180 ? f.width : f.height;
    if (fw != dw || fh != dh) {
      c.x = c.x * fw / dw;
      c.w = std::max(1, c.w * fw / dw);
      c.y = c.y * fh / dh;
      c.h = std::max(1, c.h * fh / dh);
    }
    scaler.convert(f, c, info.rotation, flip, clip.width, clip.height,
                   clip.pixels.data() + i * frame_bytes, path);
    clip.times.push_back(reader.time_of(f));
  }
  clip.decoded_frames = reader.decoded_frames();
  return clip;
}

}  // namespace harvest::data
