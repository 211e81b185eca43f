// Training state <-> checkpoint records (docs/checkpoint-format.md), everything exact resume needs:
//   model/<module path>/<name>        parameters and buffers ("visual.conv1.weight" ->
//                                     model/visual/conv1/weight), in their own dtype
//   optimizer/<param path>/exp_avg    AdamW first moment (trainable parameters only)
//   optimizer/<param path>/exp_avg_sq AdamW second moment
//   optimizer/<param path>/step       AdamW step count (int64 scalar)
//   rng/torch_cpu, rng/patch_dropper, rng/text_masker   generator states (uint8)
//   rng/cuda/<device>                 each visible CUDA device's default generator (GPU runs)
//   data/sampler                      the batch source's position (JSON text, uint8)
//   train/progress                    JSON: step, epoch, skipped steps, clips seen
// The schedule is a pure function of the step, so the step restores it.
#pragma once

#include <filesystem>
#include <string>

#include "checkpoint/reader.hpp"
#include "checkpoint/snapshot.hpp"
#include "model/video_text_model.hpp"

namespace harvest {

struct TrainProgress {
  int64_t step = 0;        // optimizer steps completed
  int64_t epoch = 0;
  int64_t skipped_steps = 0;
  int64_t clips_seen = 0;  // this rank
};

// "visual.conv1.weight" -> "model/visual/conv1/weight"
std::string model_record_path(const std::string& name);

// Host copies of the whole training state at a step boundary (the blocking part of a save), made
// into `into`: pass CheckpointSaver::snapshot() so the copies land in the previous save's
// recycled buffers (no page faults) and run on the saver's copy threads. Every copy is done when
// this returns.
checkpoint::Snapshot capture_training_state(VideoTextModelImpl& model, torch::optim::AdamW& optimizer,
                                            const TrainProgress& progress, const std::string& sampler_state,
                                            checkpoint::Snapshot into = {});

// Restores everything capture_training_state() saved; throws Runtime naming the file and every
// missing, unexpected or mis-shaped tensor (nothing is changed in that case). Returns the
// progress and the sampler state.
std::pair<TrainProgress, std::string> restore_training_state(const std::filesystem::path& file,
                                                             VideoTextModelImpl& model,
                                                             torch::optim::AdamW& optimizer);

// Initialisation from any harvest checkpoint (imported CLIP, an earlier run): weights only. The
// temporal embedding is resized (linear in time) when the frame count differs, the spatial
// position embedding (CLS kept, grid bicubic) when the image size does. Throws Runtime naming
// every missing or mis-shaped tensor; optimizer/rng records are ignored.
void load_model_weights(const std::filesystem::path& file, VideoTextModelImpl& model);

}  // namespace harvest
