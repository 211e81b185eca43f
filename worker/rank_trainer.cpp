#include "worker/rank_trainer.hpp"

#include <spdlog/spdlog.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <cstdlib>
#include <thread>

#include "checkpoint/from_config.hpp"
#include "core/cpus.hpp"
#include "core/error.hpp"
#include "model/tokenizer/tokenizer.hpp"

namespace harvest {
namespace fs = std::filesystem;

namespace {
nlohmann::json step_record(const StepOutcome& o) {
  const double wait_fraction = o.step_s > 0 ? o.data_wait_s / o.step_s : 0;
  return {{"step", o.step + 1},
          {"applied", o.applied},
          {"loss", o.loss},
          {"vtc", o.vtc},
          {"mlm", o.mlm},
          {"lr", o.lr},
          {"temperature", o.logit_scale > 0 ? 1.0 / o.logit_scale : 0.0},
          {"grad_norm", o.grad_norm},
          {"clips", o.clips},
          {"clips_per_s", o.step_s > 0 ? static_cast<double>(o.clips) / o.step_s : 0},
          {"step_s", o.step_s},
          {"data_wait_s", o.data_wait_s},
          {"data_wait_fraction", wait_fraction},
          {"comm_wait_s", o.reduce.comm_wait_s},
          // Overlap: gradient buckets whose all-reduce started during backward, of all buckets.
          {"buckets", o.reduce.buckets},
          {"buckets_overlapped", o.reduce.buckets_started_in_backward},
          {"bad_samples", o.bad_samples}};
}

}  // namespace

void require_trainable(const Config& config) {
  HARVEST_REQUIRE(!config.data.train_manifest.empty(), Config,
                  "data.train_manifest: required for training");
  HARVEST_REQUIRE(!config.model.vocab.empty(), Config,
                  "model.vocab: required (CLIP's bpe_simple_vocab_16e6.txt.gz, or learn one with "
                  "`harvest data vocab --manifest M --size N --out vocab.txt.gz`)");
}

int intra_op_threads(const TrainConfig& train) {
  if (train.threads > 0) return static_cast<int>(train.threads);
  return usable_cpus();
}

torch::Device training_device(const TrainConfig& train, int local_index) {
  const auto visible = static_cast<int>(torch::cuda::device_count());
  if (train.device == "cpu" || (train.device == "auto" && visible == 0)) return torch::kCPU;
  HARVEST_REQUIRE(
      visible > 0, Config,
      "train.device = cuda: no CUDA device is visible to this process (LibTorch ", TORCH_VERSION,
      ", CUDA_VISIBLE_DEVICES=",
      std::getenv("CUDA_VISIBLE_DEVICES") ? std::getenv("CUDA_VISIBLE_DEVICES") : "unset", ")");
  const int index = local_index % visible;
  // One visible device is the scheduler's binding (Slurm --gpus-per-task, a Kubernetes GPU
  // request): every local index maps to it. With several, wrapping around means two workers
  // share a GPU, which NCCL refuses.
  if (index != local_index && visible > 1)
    spdlog::warn("device index {} with {} visible CUDA device(s): using cuda:{}", local_index,
                 visible, index);
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

int local_device_index(int requested) {
  if (requested >= 0) return requested;
  for (const char* name : {"LOCAL_RANK", "SLURM_LOCALID"}) {
    const char* value = std::getenv(name);
    if (!value || !*value) continue;
    char* end = nullptr;
    const long index = std::strtol(value, &end, 10);
    HARVEST_REQUIRE(*end == '\0' && index >= 0 && index < 65536, Config, "$", name, " = '", value,
                    "': not a device index");
    return static_cast<int>(index);
  }
  return 0;
}

std::string collective_backend(const DistConfig& dist, const torch::Device& device) {
  const std::string backend =
      dist.backend == "auto" ? (device.is_cuda() ? "nccl" : "gloo") : dist.backend;
  HARVEST_REQUIRE(backend != "nccl" || device.is_cuda(), Config,
                  "dist.backend = nccl needs a CUDA device; this process trains on ", device.str());
  HARVEST_REQUIRE(backend != "gloo" || !device.is_cuda(), Config, "dist.backend = gloo on ",
                  device.str(),
                  ": harvest's Gloo groups carry CPU tensors; use dist.backend = nccl (or auto) on "
                  "GPUs, or train.device = cpu");
  HARVEST_REQUIRE(backend != "nccl" || nccl_available(), Config, "dist.backend = ", dist.backend,
                  " on ", device.str(),
                  ": this harvest was built without NCCL (docs/build.md: HARVEST_WITH_CUDA)");
  return backend;
}

bool uses_bf16(const TrainConfig& train, const torch::Device& device) {
  return train.precision == "bf16" || (train.precision == "auto" && device.is_cuda());
}

RankTrainer::RankTrainer(const Config& config,
                         std::shared_ptr<const tokenizer::Tokenizer> tokenizer, CommGroup& group,
                         torch::Device device, checkpoint::SaverOptions saver_options,
                         nlohmann::json record_tags, std::shared_ptr<LoaderHub> loader_hub)
    : config_(config),
      tokenizer_(std::move(tokenizer)),
      group_(group),
      device_(device),
      record_tags_(std::move(record_tags)),
      loader_hub_(std::move(loader_hub)) {
  // The global generator is checkpointed (rng/torch_cpu): seeding it makes its state a function of
  // (seed, rank), not of what this process did before (library set-up, earlier generations).
  torch::manual_seed(static_cast<uint64_t>(config_.train.seed) +
                     static_cast<uint64_t>(group_.rank()));
  set_deterministic_kernels(config_.train.deterministic);
  if (config_.train.deterministic) spdlog::info("train.deterministic: deterministic kernels on");
  const ModelOptions options =
      model_options(config_.model,
                    VocabInfo{tokenizer_->vocab_size(), tokenizer_->sot_id(), tokenizer_->eot_id()},
                    static_cast<uint64_t>(config_.train.seed));
  model_ = VideoTextModel(options);
  model_->seed_sampling(static_cast<uint64_t>(config_.train.seed), group_.rank());
  if (!config_.model.init.empty()) {
    load_model_weights(config_.model.init, *model_);
    spdlog::info("initialised weights from {}", config_.model.init);
  }
  if (device_.is_cuda()) {
    use_cuda_device(device_.index());  // the default stream the collectives order after
    model_->to(device_);
  }
  HARVEST_REQUIRE(!uses_bf16(config_.train, device_) || device_.is_cuda(), Config,
                  "train.precision = bf16 needs a CUDA device (this process trains on ",
                  device_.str(), ")");
  model_->set_bf16_autocast(uses_bf16(config_.train, device_));
  // Loader processes when data.loaders_per_worker > 0, else decoding in this process.
  source_ = make_shard_source(config_, tokenizer_, group_.rank(), group_.size(), {}, loader_hub_);
  const int64_t global_batch = config_.data.batch_size * config_.train.accumulation * group_.size();
  warmup_steps_ =
      warmup_steps_for(config_.train.warmup_epochs, static_cast<int64_t>(source_->dataset_size()),
                       global_batch, config_.train.steps);
  step_ = std::make_unique<TrainStep>(model_, group_, config_.train, config_.dist,
                                      config_.train.steps, warmup_steps_, device_);
  saver_ = std::make_unique<checkpoint::CheckpointSaver>(std::move(saver_options));
  metrics_ = std::make_unique<MetricsWriter>(
      (fs::path(config_.logging.run_dir) / "metrics.jsonl").string());
}

RankTrainer::~RankTrainer() = default;

void RankTrainer::resume(const fs::path& part) {
  std::string sampler;
  std::tie(progress_, sampler) = restore_training_state(part, *model_, step_->optimizer());
  source_.reset();  // its loaders stop before the resumed source starts its own
  source_ = make_shard_source(config_, tokenizer_, group_.rank(), group_.size(),
                              parse_sampler_state(sampler), loader_hub_);
  first_step_ = progress_.step;
  spdlog::info("resumed from {} at step {}", part.string(), progress_.step);
}

StepOutcome RankTrainer::step() {
  if (progress_.step == first_step_) {
    clock_.reset();
    spdlog::info(
        "training steps {}..{} (warm-up {}, {} samples, batch {} x {} rank(s)) on {}{} with {}",
        progress_.step, config_.train.steps, warmup_steps_, source_->dataset_size(),
        config_.data.batch_size, group_.size(), device_.str(),
        uses_bf16(config_.train, device_) ? " (bf16 autocast)" : "", group_.backend());
  }
  // The unmasked phase: the last train.unmasked_steps steps see every patch (a function of the
  // step alone, so a resumed run switches at the same step).
  const bool unmasked = progress_.step >= config_.train.steps - config_.train.unmasked_steps;
  model_->set_drop_ratio(unmasked ? 0.0 : config_.model.drop_ratio);
  if (unmasked && progress_.step == config_.train.steps - config_.train.unmasked_steps &&
      config_.model.drop_ratio > 0)
    spdlog::info("step {}: unmasked phase, patch dropping off for the last {} steps",
                 progress_.step, config_.train.unmasked_steps);
  const StepOutcome outcome = step_->run(*source_, progress_.step);
  ++progress_.step;
  progress_.epoch = static_cast<int64_t>(source_->epoch());
  progress_.clips_seen += outcome.clips;
  progress_.skipped_steps += outcome.applied ? 0 : 1;

  // Diagnostics.
  wait_s_ += outcome.data_wait_s;
  busy_s_ += outcome.step_s;
  clips_ += outcome.clips;
  bad_samples_ += outcome.bad_samples;
  final_loss_ = outcome.loss;
  if (progress_.step % config_.logging.metrics_every == 0) {
    nlohmann::json record = step_record(outcome);
    record.update(record_tags_);
    metrics_->write(std::move(record));
  }
  if (progress_.step % config_.train.log_every == 0 || progress_.step == config_.train.steps) {
    const double eta = busy_s_ / static_cast<double>(progress_.step - first_step_) *
                       static_cast<double>(config_.train.steps - progress_.step);
    spdlog::info(
        "step {}/{} loss {:.4f} (vtc {:.4f} mlm {:.4f}) lr {:.3g} {:.1f} clips/s data-wait {:.1f}% "
        "eta {:.0f}s",
        progress_.step, config_.train.steps, outcome.loss, outcome.vtc, outcome.mlm, outcome.lr,
        static_cast<double>(clips_) / busy_s_, 100.0 * wait_s_ / busy_s_, eta);
  }
  if (!outcome.applied) spdlog::warn("step {}: non-finite gradients, step skipped", progress_.step);
  return outcome;
}

bool RankTrainer::checkpoint_due() const {
  return config_.checkpoint.every_steps > 0 &&
         progress_.step % config_.checkpoint.every_steps == 0 && !finished();
}

bool RankTrainer::initial_save_due() const {
  return config_.checkpoint.save_initial && progress_.step == 0;
}

void RankTrainer::save() {
  checkpoint::Snapshot snap = capture_training_state(*model_, step_->optimizer(), progress_,
                                                     source_->state(), saver_->snapshot());
  snap.meta.rank = group_.rank();
  snap.meta.world_size = group_.size();
  snap.meta.torch_version = TORCH_VERSION;
  snap.meta.config_toml = to_toml(config_);
  saver_->save(std::move(snap));
}

void RankTrainer::wait_saved() {
  const auto last = saver_->wait();
  HARVEST_REQUIRE(last && last->ok, Runtime, "checkpoint at step ",
                  last ? last->step : progress_.step,
                  " failed: ", last ? last->error : std::string("no save ran"));
}

TrainSummary RankTrainer::summary() const {
  TrainSummary s;
  s.first_step = first_step_;
  s.steps = progress_.step;
  s.train_seconds = clock_.seconds();
  s.clips_per_s = busy_s_ > 0 ? static_cast<double>(clips_) / busy_s_ : 0;
  s.data_wait_fraction = busy_s_ > 0 ? wait_s_ / busy_s_ : 0;
  s.skipped_steps = progress_.skipped_steps;
  s.bad_samples = bad_samples_;
  s.final_loss = final_loss_;
  return s;
}

}  // namespace harvest
