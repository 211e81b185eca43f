#include "worker/trainer.hpp"

#include <spdlog/spdlog.h>
#include <torch/version.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "checkpoint/from_config.hpp"
#include "core/error.hpp"
#include "core/metrics.hpp"
#include "core/time.hpp"
#include "model/tokenizer/tokenizer.hpp"
#include "worker/checkpoint_state.hpp"
#include "worker/shard_source.hpp"
#include "worker/train_step.hpp"

namespace harvest {
namespace fs = std::filesystem;

namespace {

int thread_count(const TrainConfig& train) {
  if (train.threads > 0) return static_cast<int>(train.threads);
  return std::max(1u, std::thread::hardware_concurrency());
}

void write_resolved_config(const Config& config) {
  fs::create_directories(config.logging.run_dir);
  std::ofstream(fs::path(config.logging.run_dir) / "config.toml") << to_toml(config);
}

nlohmann::json step_record(const StepOutcome& o) {
  const double wait_fraction = o.step_s > 0 ? o.data_wait_s / o.step_s : 0;
  return {{"step", o.step + 1},         {"applied", o.applied},
          {"loss", o.loss},             {"vtc", o.vtc},
          {"mlm", o.mlm},               {"lr", o.lr},
          {"temperature", o.logit_scale > 0 ? 1.0 / o.logit_scale : 0.0},
          {"grad_norm", o.grad_norm},   {"clips", o.clips},
          {"clips_per_s", o.step_s > 0 ? static_cast<double>(o.clips) / o.step_s : 0},
          {"step_s", o.step_s},         {"data_wait_s", o.data_wait_s},
          {"data_wait_fraction", wait_fraction},
          {"comm_wait_s", o.reduce.comm_wait_s},
          {"bad_samples", o.bad_samples}};
}

}  // namespace

TrainSummary train_single_process(const Config& config) {
  HARVEST_REQUIRE(config.dist.world_size == 1, Config, "harvest train runs one worker; dist.world_size is ",
                  config.dist.world_size, " (use harvest run for several)");
  HARVEST_REQUIRE(!config.data.train_manifest.empty(), Config, "data.train_manifest: required for training");
  HARVEST_REQUIRE(!config.model.vocab.empty(), Config,
                  "model.vocab: required (CLIP's bpe_simple_vocab_16e6.txt.gz, or learn one with "
                  "`harvest data vocab --manifest M --size N --out vocab.txt.gz`)");
  HARVEST_REQUIRE(config.train.device != "cuda", Config,
                  "train.device = cuda: `harvest train` trains on CPU; the CUDA step runs under `harvest bench step`");
  at::set_num_threads(thread_count(config.train));
  write_resolved_config(config);

  const auto tokenizer =
      std::make_shared<const tokenizer::Tokenizer>(tokenizer::Tokenizer::load(config.model.vocab));
  const ModelOptions options =
      model_options(config.model, VocabInfo{tokenizer->vocab_size(), tokenizer->sot_id(), tokenizer->eot_id()},
                    static_cast<uint64_t>(config.train.seed));
  VideoTextModel model(options);
  model->seed_sampling(static_cast<uint64_t>(config.train.seed), 0);
  if (!config.model.init.empty()) {
    load_model_weights(config.model.init, *model);
    spdlog::info("initialised weights from {}", config.model.init);
  }

  auto group = make_local_group();
  // Loader processes when data.loaders_per_worker > 0, else decoding in this process.
  auto source = make_shard_source(config, tokenizer, 0, 1);
  const int64_t warmup = warmup_steps_for(config.train.warmup_epochs, static_cast<int64_t>(source->dataset_size()),
                                          config.data.batch_size * config.train.accumulation, config.train.steps);
  TrainStep step(model, *group, config.train, config.dist, config.train.steps, warmup, torch::kCPU);

  TrainSummary summary;
  TrainProgress progress;
  if (const auto resume = checkpoint::resolve_resume(config)) {
    for (const auto& why : resume->skipped) spdlog::warn("not resuming from {}", why);
    std::string sampler;
    std::tie(progress, sampler) = restore_training_state(resume->parts.at(0), *model, step.optimizer());
    source.reset();  // its loaders stop before the resumed source starts its own
    source = make_shard_source(config, tokenizer, 0, 1, parse_sampler_state(sampler));
    summary.first_step = progress.step;
    spdlog::info("resumed from {} at step {}", resume->parts.at(0).string(), progress.step);
  }

  checkpoint::CheckpointSaver saver(checkpoint::saver_options(config));
  MetricsWriter metrics((fs::path(config.logging.run_dir) / "metrics.jsonl").string());
  auto save = [&] {
    checkpoint::Snapshot snap =
        capture_training_state(*model, step.optimizer(), progress, source->state(), saver.snapshot());
    snap.meta.torch_version = TORCH_VERSION;
    snap.meta.config_toml = to_toml(config);
    saver.save(std::move(snap));
  };

  Stopwatch clock;
  double wait_s = 0, busy_s = 0;
  int64_t clips = 0;
  spdlog::info("training steps {}..{} (warm-up {}, {} samples, batch {})", progress.step, config.train.steps, warmup,
               source->dataset_size(), config.data.batch_size);
  while (progress.step < config.train.steps) {
    const StepOutcome outcome = step.run(*source, progress.step);
    ++progress.step;
    progress.epoch = static_cast<int64_t>(source->epoch());
    progress.clips_seen += outcome.clips;
    progress.skipped_steps += outcome.applied ? 0 : 1;

    // Diagnostics.
    wait_s += outcome.data_wait_s;
    busy_s += outcome.step_s;
    clips += outcome.clips;
    summary.bad_samples += outcome.bad_samples;
    summary.final_loss = outcome.loss;
    if (progress.step % config.logging.metrics_every == 0) metrics.write(step_record(outcome));
    if (progress.step % config.train.log_every == 0 || progress.step == config.train.steps) {
      const double eta = busy_s / static_cast<double>(progress.step - summary.first_step) *
                         static_cast<double>(config.train.steps - progress.step);
      spdlog::info("step {}/{} loss {:.4f} (vtc {:.4f} mlm {:.4f}) lr {:.3g} {:.1f} clips/s data-wait {:.1f}% eta {:.0f}s",
                   progress.step, config.train.steps, outcome.loss, outcome.vtc, outcome.mlm, outcome.lr,
                   static_cast<double>(clips) / busy_s, 100.0 * wait_s / busy_s, eta);
    }
    if (!outcome.applied) spdlog::warn("step {}: non-finite gradients, step skipped", progress.step);

    if (config.checkpoint.every_steps > 0 && progress.step % config.checkpoint.every_steps == 0 &&
        progress.step < config.train.steps)
      save();
  }
  save();
  const auto last = saver.wait();
  HARVEST_REQUIRE(last && last->ok, Runtime, "final checkpoint at step ", progress.step, " failed: ",
                  last ? last->error : std::string("no save ran"));

  summary.steps = progress.step;
  summary.train_seconds = clock.seconds();
  summary.clips_per_s = busy_s > 0 ? static_cast<double>(clips) / busy_s : 0;
  summary.data_wait_fraction = busy_s > 0 ? wait_s / busy_s : 0;
  summary.skipped_steps = progress.skipped_steps;
  summary.last_checkpoint = checkpoint::checkpoint_folder(checkpoint::checkpoint_dir(config), progress.step).string();
  return summary;
}

}  // namespace harvest
