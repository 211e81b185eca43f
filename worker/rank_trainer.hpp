// RankTrainer: one rank's training — the model, TrainStep (optimizer, schedule, gradient buckets
// over the rank's CommGroup), the rank's shard of the data, progress, checkpoint saves and
// metrics. `harvest train` drives one over a local group (trainer.cpp); `harvest worker` builds
// one per generation over the group the coordinator's rendezvous formed (coordinated_worker.cpp).
// The loops that drive it live with those commands and read top to bottom.
#pragma once

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "checkpoint/saver.hpp"
#include "core/config/config.hpp"
#include "core/metrics.hpp"
#include "core/time.hpp"
#include "worker/checkpoint_state.hpp"
#include "worker/comm_group.hpp"
#include "worker/shard_source.hpp"
#include "worker/train_step.hpp"

namespace harvest {
namespace tokenizer {
class Tokenizer;
}

// Throws Config naming the key when the config cannot train (no manifest, no vocabulary, ...).
void require_trainable(const Config& config);

// train.threads, or every core when 0.
int intra_op_threads(const TrainConfig& train);

// The device this process trains on: train.device = cpu, cuda (device `local_index` modulo the
// visible count; Config error when none is visible) or auto (CUDA when visible, else CPU).
torch::Device training_device(const TrainConfig& train, int local_index);

// The CUDA device index a process on this node should own: `requested` when >= 0, else
// $LOCAL_RANK (torchrun, Kubernetes operators), else $SLURM_LOCALID, else 0.
int local_device_index(int requested);

// The group's library for a worker on `device`: "nccl" (CUDA) or "gloo" (CPU), from
// dist.backend (auto picks by device). Throws Config when they disagree or NCCL is not built in.
std::string collective_backend(const DistConfig& dist, const torch::Device& device);

// bf16 autocast: train.precision = bf16, or auto on a CUDA device.
bool uses_bf16(const TrainConfig& train, const torch::Device& device);

struct TrainSummary {
  int64_t first_step = 0;  // > 0 when resumed
  int64_t steps = 0;       // the step reached
  double train_seconds = 0;
  double clips_per_s = 0;
  double data_wait_fraction = 0;
  int64_t skipped_steps = 0;
  int64_t bad_samples = 0;
  double final_loss = 0;
  std::string last_checkpoint;  // folder of the last committed checkpoint ("" if none)
};

class RankTrainer {
 public:
  // `group` outlives the trainer and works on `device` (training_device()); `record_tags` are
  // added to every metrics.jsonl record (e.g. rank and generation). Weights come from model.init
  // when set, else from train.seed.
  RankTrainer(const Config& config, std::shared_ptr<const tokenizer::Tokenizer> tokenizer,
              CommGroup& group, torch::Device device, checkpoint::SaverOptions saver_options,
              nlohmann::json record_tags = nlohmann::json::object(),
              std::shared_ptr<LoaderHub> loader_hub = {});
  ~RankTrainer();  // finishes the save in flight
  RankTrainer(const RankTrainer&) = delete;
  RankTrainer& operator=(const RankTrainer&) = delete;

  // Exact resume from a checkpoint part: weights, optimizer, RNG, progress, data position.
  void resume(const std::filesystem::path& part);

  // One optimizer step, then its diagnostics (metrics record, progress line, skip warning).
  StepOutcome step();
  bool finished() const { return progress_.step >= config_.train.steps; }
  // checkpoint.every_steps falls on this step (the last step excluded: the caller's final save).
  bool checkpoint_due() const;
  // checkpoint.save_initial and nothing trained yet: the starting weights become step 0.
  bool initial_save_due() const;
  // Snapshot of the state at this step boundary, written in the background (checkpoint.async).
  void save();
  // Waits for the save in flight; throws Runtime naming the step when it failed.
  void wait_saved();
  // Waits for the save in flight without judging it.
  void wait_for_saves() { saver_->wait(); }
  // The last finished save, if any.
  std::optional<checkpoint::SaveStatus> last_save() const { return saver_->status(); }

  const TrainProgress& progress() const { return progress_; }
  // The data position after the steps so far ({"epoch": E, "cursor": C}).
  std::string sampler_state() const { return source_->state(); }
  TrainSummary summary() const;

 private:
  Config config_;
  std::shared_ptr<const tokenizer::Tokenizer> tokenizer_;
  CommGroup& group_;
  torch::Device device_;
  nlohmann::json record_tags_;
  VideoTextModel model_{nullptr};
  std::shared_ptr<LoaderHub> loader_hub_;  // coordinator-placed loaders (else null)
  std::unique_ptr<ShardSource> source_;
  std::unique_ptr<TrainStep> step_;
  int64_t warmup_steps_ = 0;
  TrainProgress progress_;
  std::unique_ptr<checkpoint::CheckpointSaver> saver_;
  std::unique_ptr<MetricsWriter> metrics_;
  // Diagnostics since construction.
  Stopwatch clock_;
  int64_t first_step_ = 0;
  double wait_s_ = 0, busy_s_ = 0;
  int64_t clips_ = 0, bad_samples_ = 0;
  double final_loss_ = 0;
};

}  // namespace harvest
