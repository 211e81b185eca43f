// The real training step in miniature for the worker tests: a tiny VideoTextModel trained
// data-parallel with TrainStep over a real CommGroup (local or Gloo) on deterministic synthetic
// batches (the global batch of each step is a function of the step; each rank takes its slice).
// Writes the final parameters (float32, parameter order) and one JSON line per step.
//   train_probe --rank R --world W --port P --steps K --global-batch B --out FILE
//               [--drop D] [--mask M] [--nan-step S --nan-rank R] [--accumulation A]
//               [--save-after S --checkpoint-dir DIR] [--resume DIR]
// With checkpoints (not in HARVEST_MODEL_ONLY builds): after step S every rank writes its part,
// rank 0 commits; --resume restores the latest committed checkpoint and continues.
#include <torch/torch.h>

#include <fstream>
#include <iostream>
#include <map>

#include "model/video_text_model.hpp"
#include "worker/comm_group.hpp"
#include "worker/train_step.hpp"
#include "tests/worker/probe_args.hpp"
#ifdef HARVEST_PROBE_CHECKPOINTS
#include "checkpoint/commit.hpp"
#include "worker/checkpoint_state.hpp"
#endif

using namespace harvest;

namespace {

constexpr int64_t kVocab = 500, kSot = 498, kEot = 499, kFrames = 2, kSize = 32, kContext = 12;

// Global batch `index`: video uint8 [B, T, H, W, 3], text [B, L] with SOT, ids, EOT, padding.
HostBatch global_batch(int64_t index, int64_t batch) {
  auto gen = at::detail::createCPUGenerator(7000 + index);
  HostBatch b;
  b.video = at::randint(0, 256, {batch, kFrames, kSize, kSize, 3}, gen, at::TensorOptions().dtype(at::kByte));
  b.text = at::zeros({batch, kContext}, at::kLong);
  const auto lengths = at::randint(3, kContext - 1, {batch}, gen, at::TensorOptions().dtype(at::kLong));
  const auto ids = at::randint(1, kSot, {batch, kContext}, gen, at::TensorOptions().dtype(at::kLong));
  for (int64_t i = 0; i < batch; ++i) {
    const int64_t n = lengths[i].item<int64_t>();
    b.text[i][0] = kSot;
    b.text[i].narrow(0, 1, n).copy_(ids[i].narrow(0, 1, n));
    b.text[i][n + 1] = kEot;
  }
  return b;
}

class SliceSource final : public BatchSource {
 public:
  SliceSource(int rank, int world, int64_t global) : rank_(rank), world_(world), global_(global) {}
  HostBatch next() override {
    HostBatch all = global_batch(index_++, global_);
    const int64_t local = global_ / world_;
    HostBatch mine;
    mine.video = all.video.narrow(0, rank_ * local, local).contiguous();
    mine.text = all.text.narrow(0, rank_ * local, local).contiguous();
    return mine;
  }
  std::string state() const { return std::to_string(index_); }
  void restore(const std::string& state) { index_ = std::stoll(state); }

 private:
  int rank_, world_;
  int64_t global_;
  int64_t index_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  const test::ProbeArgs args(argc, argv);
  auto get = [&](const std::string& k, const std::string& def) { return args.get(k, def); };
  const int rank = args.rank();
  const int world = args.world();
  const int steps = std::stoi(get("--steps", "3"));
  const int nan_step = std::stoi(get("--nan-step", "-1"));
  const int nan_rank = std::stoi(get("--nan-rank", "-1"));
  at::set_num_threads(1);
  try {
    const std::unique_ptr<CommGroup> group = args.make_group(/*timeout_s=*/GlooRendezvous{}.timeout_s);
    ModelConfig mc;
    mc.preset = "tiny";
    mc.frames = kFrames;
    mc.image_size = kSize;
    mc.context_length = kContext;
    mc.drop_ratio = std::stod(get("--drop", "0"));
    mc.text_mask_ratio = std::stod(get("--mask", "0"));
    mc.freeze_text = false;
    mc.fusion_layers = 1;
    const ModelOptions options = model_options(mc, VocabInfo{kVocab, kSot, kEot}, 11);
    VideoTextModel model(options);
    model->seed_sampling(5, rank);
    TrainConfig train;
    train.lr = 1e-3;
    train.accumulation = std::stoi(get("--accumulation", "1"));
    DistConfig dist;
    dist.bucket_mb = 0.05;
    TrainStep step(model, *group, train, dist, steps, 1, torch::kCPU);
    SliceSource source(rank, world, std::stoi(get("--global-batch", "8")) / train.accumulation);
    int first_step = 0;
#ifdef HARVEST_PROBE_CHECKPOINTS
    const int save_after = std::stoi(get("--save-after", "-1"));
    const std::string checkpoint_dir = get("--checkpoint-dir", "");
    if (args.has("--resume")) {
      const auto latest = checkpoint::resolve_latest(args.get("--resume", ""));
      if (!latest) throw std::runtime_error("no committed checkpoint in " + args.get("--resume", ""));
      auto [progress, sampler] = restore_training_state(latest->parts.at(rank), *model, step.optimizer());
      first_step = static_cast<int>(progress.step);
      source.restore(sampler);
    }
#endif
    for (int s = first_step; s < steps; ++s) {
      if (s == nan_step && rank == nan_rank) {
        // A non-finite loss on one rank only: poison this rank's temperature for one step.
        const auto saved = model->logit_scale.detach().clone();
        model->logit_scale.detach().fill_(std::numeric_limits<float>::quiet_NaN());
        const StepOutcome o = step.run(source, s);
        model->logit_scale.detach().copy_(saved);
        std::cout << "{\"rank\": " << rank << ", \"step\": " << s << ", \"applied\": " << o.applied << "}\n";
        continue;
      }
      const StepOutcome o = step.run(source, s);
      std::cout.precision(17);
      std::cout << "{\"rank\": " << rank << ", \"step\": " << s << ", \"applied\": " << o.applied
                << ", \"vtc\": " << o.vtc << ", \"mlm\": " << o.mlm << ", \"overlap\": "
                << o.reduce.buckets_started_in_backward << "}\n";
#ifdef HARVEST_PROBE_CHECKPOINTS
      if (s + 1 == save_after) {
        checkpoint::Snapshot snap = capture_training_state(*model, step.optimizer(), TrainProgress{s + 1, 0, 0, 0},
                                                           source.state());
        snap.meta.rank = rank;
        snap.meta.world_size = world;
        checkpoint::write_part(snap, checkpoint_dir);
        group->barrier(Deadline::after_seconds(30));
        if (rank == 0) checkpoint::commit_checkpoint(checkpoint_dir, s + 1, world);
      }
#endif
    }
    std::ofstream out(get("--out", "/dev/null"), std::ios::binary);
    for (const auto& p : model->parameters()) {
      const auto c = p.detach().to(at::kFloat).contiguous();
      out.write(static_cast<const char*>(c.data_ptr()), c.numel() * sizeof(float));
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "train_probe rank " << rank << ": " << e.what() << std::endl;
    return 1;
  }
}
