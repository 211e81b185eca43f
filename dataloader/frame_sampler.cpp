#include "dataloader/frame_sampler.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"

namespace harvest::data {

std::vector<double> sample_times(TimeSpan span, int64_t frames, Sampling sampling, double fps,
                                 SampleRng& rng) {
  HARVEST_REQUIRE(frames > 0, Usage, "frames must be positive, got ", frames);
  const double length = std::max(0.0, span.end - span.start);
  std::vector<double> times(static_cast<size_t>(frames));
  if (fps > 0) {
    const double window = (frames - 1) / fps;
    const double slack = std::max(0.0, length - window);
    const double first =
        span.start + (sampling == Sampling::Random ? rng.uniform(0, slack) : slack / 2);
    for (int64_t i = 0; i < frames; ++i) times[i] = std::min(first + i / fps, span.start + length);
    return times;
  }
  const double segment = length / static_cast<double>(frames);
  for (int64_t i = 0; i < frames; ++i) {
    const double offset = sampling == Sampling::Random ? rng.uniform() : 0.5;
    times[i] = span.start + (static_cast<double>(i) + offset) * segment;
  }
  return times;
}

std::vector<int64_t> short_video_indices(int64_t available, int64_t frames) {
  HARVEST_REQUIRE(available > 0 && frames > 0, Usage, "short_video_indices(", available, ", ",
                  frames, ")");
  std::vector<int64_t> idx(static_cast<size_t>(frames));
  for (int64_t i = 0; i < frames; ++i) idx[i] = std::min(i, available - 1);
  return idx;
}

CropRect random_resized_crop(int width, int height, const CropOptions& o, SampleRng& rng) {
  const double area = static_cast<double>(width) * height;
  const double log_lo = std::log(o.ratio_min), log_hi = std::log(o.ratio_max);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * rng.uniform(o.scale_min, o.scale_max);
    const double ratio = std::exp(rng.uniform(log_lo, log_hi));
    const int w = static_cast<int>(std::lround(std::sqrt(target * ratio)));
    const int h = static_cast<int>(std::lround(std::sqrt(target / ratio)));
    if (w > 0 && h > 0 && w <= width && h <= height) {
      const int y = static_cast<int>(rng.below(static_cast<uint64_t>(height - h + 1)));
      const int x = static_cast<int>(rng.below(static_cast<uint64_t>(width - w + 1)));
      return {x, y, w, h};
    }
  }
  const double in_ratio = static_cast<double>(width) / height;
  int w = width, h = height;
  if (in_ratio < o.ratio_min) {
    h = static_cast<int>(std::lround(w / o.ratio_min));
  } else if (in_ratio > o.ratio_max) {
    w = static_cast<int>(std::lround(h * o.ratio_max));
  }
  w = std::clamp(w, 1, width);
  h = std::clamp(h, 1, height);
  return {(width - w) / 2, (height - h) / 2, w, h};
}

}  // namespace harvest::data
