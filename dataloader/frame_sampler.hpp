// Which times of a clip to show the model, and which part of the picture: pure functions of the
// clip's span, the options and a SampleRng (no decoding here, so they are tested on their own).
#pragma once

#include <cstdint>
#include <vector>

#include "dataloader/rng.hpp"

namespace harvest::data {

enum class Sampling { Middle, Random };  // eval: segment middles; train: random time per segment

struct TimeSpan {
  double start = 0.0;  // seconds from the stream start
  double end = 0.0;
};

// T equal segments of the span; Random draws one time per segment, Middle takes the centres.
// fps > 0 instead samples T times 1/fps apart (Random: random window start, Middle: centred);
// times past the span's end are clamped to it (the last frame repeats).
std::vector<double> sample_times(TimeSpan span, int64_t frames, Sampling sampling, double fps,
                                 SampleRng& rng);

// Frame-index rule for videos with fewer frames than T: all frames, then the last repeated.
std::vector<int64_t> short_video_indices(int64_t available, int64_t frames);

struct CropRect {
  int x = 0, y = 0, w = 0, h = 0;
};

struct CropOptions {
  double scale_min = 0.5;
  double scale_max = 1.0;
  double ratio_min = 3.0 / 4.0;
  double ratio_max = 4.0 / 3.0;
};

// RandomResizedCrop's box (torchvision's rule): area fraction in [scale_min, scale_max], log-
// uniform aspect ratio, 10 tries, then a centre crop clamped to the ratio range.
CropRect random_resized_crop(int width, int height, const CropOptions& options, SampleRng& rng);

}  // namespace harvest::data
