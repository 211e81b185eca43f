// `harvest bench decode`: clips/s and frames/s of the dataloader's decode path (eval sampling,
// resize to SxS) against PyAV and torchcodec (exact and approximate seek modes) doing the same
// sampling (bench/reference/decode_reference.py), interleaved A B C D A B C D with medians reported; harvest also runs without the reader's early drain
// (VideoReader::frames_at) in each repetition, so its effect is measured side by side too.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace harvest::bench {

struct DecodeBenchOptions {
  std::vector<std::string> videos;  // empty: generate 4 H.264 clips (640x360, 30 fps)
  int64_t frames = 8;
  int size = 224;
  int threads = 1;               // clip workers, one single-threaded decoder each
  int reps = 3;                  // interleaved repetitions of (harvest, PyAV)
  int passes = 2;                // passes over the video list per repetition
  int gop = 30;                  // keyframe interval of the generated clips (frames)
  int seconds = 5;               // length of the generated clips
  bool reference = true;         // also run PyAV and torchcodec (the project's Python has both)
  std::string reference_script;  // default: the source tree's bench/reference/decode_reference.py
};

// Runs the benchmark (progress lines to stderr); returns the summary for the last line.
nlohmann::json run_decode_bench(const DecodeBenchOptions& options);

}  // namespace harvest::bench
