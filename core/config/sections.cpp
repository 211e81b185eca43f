// The key table: every config key, its type, range, default (the struct initialiser) and meaning.
// docs/config.md is generated from this file (`harvest config docs`); a test keeps them equal.
#include <limits>

#include "core/config/schema.hpp"

namespace harvest::config_detail {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kMaxInt = 9.0e15;

Range closed(double lo, double hi) { return Range{lo, hi}; }
Range half_open(double lo, double hi) { return Range{lo, hi, false, true}; }
Range positive(double hi = kInf) { return Range{0, hi, true, false}; }

Section model_section() {
  return SectionBuilder<ModelConfig>("model", "The video-text model and the recipe's dropping/masking.",
                                     &Config::model)
      .text("preset", &ModelConfig::preset, {"tiny", "S/16", "B/16", "L/14"},
            "Architecture: tiny (tests, CPU demo) or CLIP's ViT-S/16, ViT-B/16, ViT-L/14 widths, depths and heads.")
      .integer("frames", &ModelConfig::frames, closed(1, 64), "Frames per clip (T).")
      .integer("image_size", &ModelConfig::image_size, closed(16, 1024),
               "Input side in pixels; must be a multiple of the preset's patch size.")
      .real("drop_ratio", &ModelConfig::drop_ratio, half_open(0, 1),
            "Fraction of video patch tokens dropped per sample in training (0.9 keeps 157 of 1568 for B/16 at 8x224). Off at eval.")
      .integer("context_length", &ModelConfig::context_length, closed(4, 77),
               "Text tokens per caption incl. SOT/EOT (uses the first N of CLIP's 77 positions).")
      .text("vocab", &ModelConfig::vocab, {},
            "BPE vocabulary: CLIP's bpe_simple_vocab_16e6.txt.gz or a Hugging Face vocab.json (merges.txt beside it). Empty: the run's learned vocabulary.")
      .real("text_mask_ratio", &ModelConfig::text_mask_ratio, half_open(0, 1),
            "Fraction of caption tokens selected for masked-language modelling (0 disables MLM).")
      .real("mask_token_prob", &ModelConfig::mask_token_prob, closed(0, 1),
            "Of the selected tokens: fraction replaced by [MASK].")
      .real("random_token_prob", &ModelConfig::random_token_prob, closed(0, 1),
            "Of the selected tokens: fraction replaced by a random token (the rest are kept).")
      .integer("fusion_layers", &ModelConfig::fusion_layers, closed(1, 12),
               "Layers of the cross-modal fusion head used by MLM.")
      .text("activation", &ModelConfig::activation, {"quick_gelu", "gelu"},
            "MLP activation of both towers: quick_gelu (OpenAI's CLIPs) or gelu (exact GELU: most open_clip / LAION "
            "CLIPs). Must be the one model.init's weights were trained with.")
      .real("temperature_init", &ModelConfig::temperature_init, Range{0, 1, true, false},
            "Initial contrastive temperature (learnable, clamped at >= 0.01).")
      .boolean("freeze_text", &ModelConfig::freeze_text,
               "Freeze CLIP's text tower (the recipe's default); the fusion head and the [MASK] embedding still train.")
      .boolean("grad_checkpointing", &ModelConfig::grad_checkpointing,
               "Recompute transformer blocks in backward to save activation memory.")
      .text("init", &ModelConfig::init, {},
            "Harvest checkpoint to initialise weights from (imported CLIP or an earlier run); weights only, unlike resume.")
      .build();
}

Section data_section() {
  return SectionBuilder<DataConfig>("data", "Training data, decoding and loader processes.", &Config::data)
      .text("train_manifest", &DataConfig::train_manifest, {},
            "Training manifest (JSONL or CSV: video, caption or captions, optional start/end/label).")
      .text("root", &DataConfig::root, {}, "Folder video paths are relative to; empty: the manifest's folder.")
      .integer("batch_size", &DataConfig::batch_size, closed(1, 65536),
               "Clips per worker per micro-step (global batch = workers x batch_size x accumulation).")
      .real("crop_scale_min", &DataConfig::crop_scale_min, Range{0, 1, true, false},
            "RandomResizedCrop: smallest crop area fraction. Raise it when captions count or "
            "place objects that a small crop can cut out.")
      .real("crop_scale_max", &DataConfig::crop_scale_max, Range{0, 1, true, false},
            "RandomResizedCrop: largest crop area fraction.")
      .boolean("flip", &DataConfig::flip,
               "Random horizontal flip in training. Turn it off when captions name left and right "
               "(a flipped clip moving left contradicts its caption).")
      .real("sampling_fps", &DataConfig::sampling_fps, closed(0, 1000),
            "Sample frames at this fixed rate instead of one per equal segment; 0: segment-based (the recipe).")
      .integer("loaders_per_worker", &DataConfig::loaders_per_worker, closed(0, 64),
               "Loader processes feeding each worker; 0 decodes inside the worker process (same batches, no isolation).")
      .text("loader_placement", &DataConfig::loader_placement, {"worker", "coordinator"},
            "worker: each worker starts data.loaders_per_worker loader processes beside it. coordinator: loaders run "
            "as separate `harvest loader --config X` processes (other hosts, their own Slurm steps or pods; `harvest run` "
            "starts data.loaders_per_worker x dist.world_size of them), register with the coordinator and are dealt "
            "to the workers by its shard plan; workers listen for them on tcp://<dist.host>:<any port>.")
      .integer("decode_threads", &DataConfig::decode_threads, closed(1, 256),
               "Decode threads per loader process.")
      .integer("queue_depth", &DataConfig::queue_depth, closed(1, 1024),
               "Credit per loader: at most this many of its batches are queued at the worker or in flight (backpressure).")
      .real("decode_timeout_s", &DataConfig::decode_timeout_s, positive(3600),
            "A sample whose decode takes longer is abandoned and counted as bad.")
      .real("max_bad_fraction", &DataConfig::max_bad_fraction, Range{0, 1, true, false},
            "Training stops with an error naming the manifest and the commonest reasons when more than this share "
            "of the last 1000 samples a worker drew were bad (missing, undecodable, ...); 1 turns the check off. "
            "Without it a manifest whose rows are all unusable skipped samples forever.")
      .integer("max_resolution", &DataConfig::max_resolution, closed(16, 16384),
               "Videos whose longer side exceeds this are skipped as bad input.")
      .real("loader_timeout_s", &DataConfig::loader_timeout_s, positive(86400),
            "A loader process that exits, or sends nothing this long while its batch is awaited, is killed and restarted where it stopped "
            "(coordinator-placed: dropped from its worker's deal, its batches dealt to the others; a worker with no loader this long stops with an error).")
      .integer("loader_max_restarts", &DataConfig::loader_max_restarts, closed(0, 1000),
               "Restarts of one loader in a row without a batch from it before the worker gives up with an error.")
      .build();
}

Section train_section() {
  return SectionBuilder<TrainConfig>("train", "Optimisation and the training loop.", &Config::train)
      .integer("steps", &TrainConfig::steps, closed(1, kMaxInt), "Optimizer steps to train.")
      .real("lr", &TrainConfig::lr, positive(1), "Peak learning rate (recipe: 2e-4 for B/16, 4e-4 for L/14).")
      .real("min_lr_ratio", &TrainConfig::min_lr_ratio, closed(0, 1),
            "Cosine schedule ends at lr x min_lr_ratio.")
      .real("warmup_epochs", &TrainConfig::warmup_epochs, closed(0, 1000),
            "Linear warm-up length in epochs of the training manifest.")
      .integer("unmasked_steps", &TrainConfig::unmasked_steps, closed(0, kMaxInt),
               "The last N steps train with patch dropping off (a short unmasked phase at the end, "
               "as UMT and InternVideo2 end masked pretraining: closes the gap to eval, where "
               "nothing is dropped); such steps cost more. 0: dropping throughout. At most "
               "train.steps.")
      .real("weight_decay", &TrainConfig::weight_decay, closed(0, 10),
            "AdamW weight decay (not applied to biases, norms, embeddings or the temperature).")
      .real("beta1", &TrainConfig::beta1, half_open(0, 1), "AdamW beta1.")
      .real("beta2", &TrainConfig::beta2, half_open(0, 1), "AdamW beta2.")
      .real("eps", &TrainConfig::eps, positive(1), "AdamW epsilon.")
      .real("grad_clip", &TrainConfig::grad_clip, closed(0, kInf), "Global gradient-norm clip; 0: off.")
      .integer("accumulation", &TrainConfig::accumulation, closed(1, 1024),
               "Micro-steps accumulated per optimizer step.")
      .real("vtc_weight", &TrainConfig::vtc_weight, closed(0, kInf), "Weight of the video-text contrastive loss.")
      .real("mlm_weight", &TrainConfig::mlm_weight, closed(0, kInf), "Weight of the masked-language-modelling loss.")
      .integer("seed", &TrainConfig::seed, closed(0, kMaxInt), "Seed for weights, sampling, dropping and masking.")
      .boolean("deterministic", &TrainConfig::deterministic,
               "Deterministic kernels everywhere (torch.use_deterministic_algorithms; cuDNN deterministic, no autotuning; CUBLAS_WORKSPACE_CONFIG=:4096:8): an op without one is an error. CPU runs are bitwise reproducible without it; this extends that to CUDA at some speed.")
      .text("precision", &TrainConfig::precision, {"auto", "fp32", "bf16"},
            "auto: bf16 autocast on CUDA, fp32 on CPU.")
      .text("device", &TrainConfig::device, {"auto", "cpu", "cuda"}, "auto: CUDA when present.")
      .integer("threads", &TrainConfig::threads, closed(0, 1024),
               "LibTorch intra-op threads per worker; 0: the CPUs this process may use (affinity mask, "
               "cgroup CPU quota) divided by local workers.")
      .integer("log_every", &TrainConfig::log_every, closed(1, kMaxInt), "Console progress line every N steps.")
      .build();
}

Section dist_section() {
  return SectionBuilder<DistConfig>("dist", "Data-parallel group and collectives.", &Config::dist)
      .text("backend", &DistConfig::backend, {"auto", "nccl", "gloo", "inproc"},
            "auto: NCCL on CUDA, Gloo on CPU, in-process for one worker.")
      .integer("world_size", &DistConfig::world_size, closed(1, 65536), "Workers (one device each).")
      .integer("min_workers", &DistConfig::min_workers, closed(0, 65536),
               "Elastic lower bound: keep training with this many after failures; 0: world_size.")
      .integer("max_workers", &DistConfig::max_workers, closed(0, 65536),
               "Elastic upper bound; 0: world_size.")
      .real("bucket_mb", &DistConfig::bucket_mb, positive(4096), "Gradient all-reduce bucket size in MiB.")
      .real("timeout_s", &DistConfig::timeout_s, positive(86400), "Deadline of every collective operation. It also bounds how long a rank waits in a collective for a peer that is still waiting for data (its loaders starting, a loader replaced): keep it above the loaders' start-up time.")
      .text("host", &DistConfig::host, {},
            "Address this worker's Gloo connections bind; rank 0 also serves the group's store there. Loopback by default; set it per node for multi-node runs (e.g. --set dist.host=$(hostname -i)).")
      .build();
}

Section checkpoint_section() {
  return SectionBuilder<CheckpointConfig>("checkpoint", "HDF5 checkpoints: cadence, retention, resume.",
                                          &Config::checkpoint)
      .text("dir", &CheckpointConfig::dir, {}, "Checkpoint folder; empty: <logging.run_dir>/checkpoints.")
      .integer("every_steps", &CheckpointConfig::every_steps, closed(0, kMaxInt),
               "Save every N steps; 0: only at the end (and on SIGTERM).")
      .integer("keep_last", &CheckpointConfig::keep_last, closed(1, 1000000), "Keep the newest N checkpoints.")
      .integer("keep_every", &CheckpointConfig::keep_every, closed(0, kMaxInt),
               "Also keep checkpoints whose step is a multiple of N; 0: none.")
      .boolean("save_initial", &CheckpointConfig::save_initial,
               "Also save the starting weights as a step-0 checkpoint before the first step, so a sweep shows the model before training (kept by keep_every, or while within keep_last).")
      .boolean("async", &CheckpointConfig::async,
               "Write in a background thread; training blocks only to snapshot tensors.")
      .text("compression", &CheckpointConfig::compression, {"none", "gzip"}, "HDF5 dataset compression.")
      .text("resume", &CheckpointConfig::resume, {},
            "auto: resume from the latest committed checkpoint in dir if any; never; or a checkpoint path.")
      .build();
}

Section eval_section() {
  return SectionBuilder<EvalConfig>("eval", "Zero-shot evaluation and sweeps.", &Config::eval)
      .text("manifest", &EvalConfig::manifest, {}, "Evaluation manifest (held-out split).")
      .texts("tasks", &EvalConfig::tasks, {"retrieval", "classification", "mcqa"}, "Tasks run by sweeps.")
      .integer("frames", &EvalConfig::frames, closed(0, 64), "Frames per clip at eval; 0: model.frames.")
      .integer("batch_size", &EvalConfig::batch_size, closed(1, 65536), "Clips per embedding batch.")
      .integer("every_steps", &EvalConfig::every_steps, closed(0, kMaxInt),
               "Evaluate during training: the coordinator hands committed checkpoints at multiples of N steps (and the "
               "last) to eval processes (`harvest sweep RUN_DIR --coordinator ADDR`; `harvest run` starts one when "
               "eval.manifest is set). 0: only in sweeps you run.")
      .boolean("spare_workers", &EvalConfig::spare_workers,
               "With every_steps and manifest set, the coordinator also hands jobs to spare workers (registered "
               "beyond dist.max_workers, idle while the others train), which evaluate on their own device; a spare "
               "given a rank cancels its evaluation within one batch and the job is queued again.")
      .real("wise_ft_alpha", &EvalConfig::wise_ft_alpha, closed(0, 1),
            "WiSE-FT: weight of the base model in the average (temporal embedding excluded); 0: off.")
      .text("wise_ft_base", &EvalConfig::wise_ft_base, {}, "Base checkpoint for WiSE-FT (the imported CLIP).")
      .text("classes", &EvalConfig::classes, {}, "Class-name file for classification (one per line).")
      .text("templates", &EvalConfig::templates, {}, "Prompt templates for classification ({} = class name).")
      .build();
}

Section coordinator_section() {
  return SectionBuilder<CoordinatorConfig>("coordinator", "Control plane: membership, failure detection, security.",
                                           &Config::coordinator)
      .text("address", &CoordinatorConfig::address, {},
            "ZeroMQ endpoint the coordinator binds (loopback unless set).")
      .integer("heartbeat_ms", &CoordinatorConfig::heartbeat_ms, closed(10, 60000), "Heartbeat interval.")
      .integer("miss_limit", &CoordinatorConfig::miss_limit, closed(1, 1000),
               "Missed heartbeats before a peer is declared lost.")
      .real("step_deadline_s", &CoordinatorConfig::step_deadline_s, positive(86400),
            "A worker that makes no step progress for this long is treated as hung (lost).")
      .integer("max_restarts", &CoordinatorConfig::max_restarts, closed(0, 1000),
               "Restarts of failed children before the launcher gives up.")
      .integer("max_message_mb", &CoordinatorConfig::max_message_mb, closed(1, 4096),
               "Larger control messages are rejected.")
      .text("curve_server_public", &CoordinatorConfig::curve_server_public, {},
            "CURVE: the coordinator's public key file (Z85); empty: no authentication.")
      .text("curve_server_secret", &CoordinatorConfig::curve_server_secret, {},
            "CURVE: the coordinator's secret key file (coordinator only).")
      .text("curve_client_public", &CoordinatorConfig::curve_client_public, {}, "CURVE: this peer's public key file.")
      .text("curve_client_secret", &CoordinatorConfig::curve_client_secret, {}, "CURVE: this peer's secret key file.")
      .text("journal", &CoordinatorConfig::journal, {}, "Job journal; empty: <logging.run_dir>/journal.log.")
      .real("rendezvous_wait_s", &CoordinatorConfig::rendezvous_wait_s, closed(0, 3600),
            "After a worker is lost: wait this long for a replacement before re-forming with fewer workers (within dist.min_workers).")
      .real("reattach_grace_s", &CoordinatorConfig::reattach_grace_s, closed(0, 3600),
            "A restarted coordinator waits this long for the journal's live members to reattach before declaring them lost.")
      .text("curve_authorized_keys", &CoordinatorConfig::curve_authorized_keys, {},
            "CURVE: file of client public keys (Z85, one per line) allowed to connect; empty: any client holding the server's public key. Workers with CURVE keys admit the same loaders on their data endpoints.")
      .boolean("exit_when_done", &CoordinatorConfig::exit_when_done,
               "`harvest coordinator` exits 0 once train.steps is committed and every member (workers, loaders, eval members) has left. Off under a Kubernetes StatefulSet, which restarts exited pods; `harvest run` and the Slurm script stop the coordinator themselves.")
      .build();
}

Section logging_section() {
  return SectionBuilder<LoggingConfig>("logging", "Logs, metrics and the run folder.", &Config::logging)
      .text("level", &LoggingConfig::level, {"trace", "debug", "info", "warn", "error", "off"}, "Log level.")
      .text("run_dir", &LoggingConfig::run_dir, {},
            "Run folder: resolved config, metrics.jsonl, logs, checkpoints, report.")
      .integer("metrics_every", &LoggingConfig::metrics_every, closed(1, kMaxInt),
               "Write a metrics.jsonl record every N steps.")
      .build();
}

}  // namespace

const std::vector<Section>& all_sections() {
  static const std::vector<Section> sections = {
      model_section(),      data_section(), train_section(),       dist_section(),
      checkpoint_section(), eval_section(), coordinator_section(), logging_section()};
  return sections;
}

}  // namespace harvest::config_detail
