// Synthetic video-text data that needs video understanding: coloured shapes (1-3 of them) moving
// in one direction over a background, captions in several phrasings. Objects wrap around the
// edges and start anywhere, so a single frame says nothing about the motion; the test split holds
// (shape, colour, motion) triples never seen in training, while every single value is seen.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "dataloader/rng.hpp"

namespace harvest::data {

struct SynthOptions {
  std::string out_dir;
  int64_t clips = 1000;
  uint64_t seed = 0;
  int size = 64;  // square frames
  int frames = 12;
  int fps = 8;
  int threads = 0;  // 0: one per core
  double test_fraction = 0.1;
  double val_fraction = 0.1;
  int held_out_triples = 12;  // of shapes x colours x motions
  bool progress = true;
};

// The attribute values (index into these for SynthClip fields).
const std::vector<std::string>& synth_shapes();
const std::vector<std::string>& synth_colours();
const std::vector<std::string>& synth_motions();
const std::vector<std::string>& synth_backgrounds();
constexpr int kSynthMaxCount = 3;

struct SynthClip {
  int64_t index = 0;
  std::string split;  // train | val | test
  int shape = 0, colour = 0, motion = 0, count = 1, background = 0;
  std::string video;  // relative to out_dir
  std::vector<std::string> captions;
};

// The dataset plan: every clip's attributes, split, file name and captions (no rendering).
std::vector<SynthClip> plan_synth(const SynthOptions& options);

// The (shape, colour, motion) triples the test split holds out for this seed.
std::vector<std::array<int, 3>> held_out_triples(const SynthOptions& options);

// The frames of one clip: [frames, size, size, 3] RGB.
std::vector<uint8_t> render_synth_clip(const SynthClip& clip, const SynthOptions& options);

// Plans, renders and encodes every clip into out_dir/videos/, writes train/val/test.jsonl and
// synth.json (the attribute space and held-out triples). Returns the plan.
std::vector<SynthClip> write_synth_dataset(const SynthOptions& options);

}  // namespace harvest::data
