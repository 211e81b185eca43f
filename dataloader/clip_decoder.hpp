// decode_clip: a video file (or a start/end segment of it) -> the uint8 [T, H, W, 3] RGB frames the
// model sees. Frame times, crop and flip come from a SampleRng, so (seed, epoch, index) fixes them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dataloader/frame_sampler.hpp"
#include "dataloader/video_reader.hpp"

namespace harvest::data {

struct ClipOptions {
  int64_t frames = 8;
  int out_width = 224;
  int out_height = 224;
  Sampling sampling = Sampling::Middle;
  bool train_augment = false;  // RandomResizedCrop + flip (else: resize the whole picture)
  CropOptions crop;
  bool flip = true;           // with train_augment: horizontal flip with probability 1/2
  double sampling_fps = 0.0;  // 0: segment sampling
  ReaderOptions reader;
};

struct Clip {
  int64_t frames = 0;
  int height = 0;
  int width = 0;
  std::vector<uint8_t> pixels;  // [frames, height, width, 3] RGB, row-major
  std::vector<double> times;    // presentation time (s from stream start) of each frame shown
  CropRect crop;                // display coordinates
  bool flipped = false;
  VideoInfo info;
  int64_t decoded_frames = 0;  // frames the decoder reconstructed to pick these (cost measure)
};

// `start`/`end` (seconds from the stream start) select a segment; unset: the whole video.
// Throws BadVideo for files that cannot give a clip (the reason says which class).
Clip decode_clip(const std::string& path, const ClipOptions& options, SampleRng& rng,
                 std::optional<double> start = std::nullopt,
                 std::optional<double> end = std::nullopt);

}  // namespace harvest::data
