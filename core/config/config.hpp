// The typed configuration: one struct per component, defaults in the member initialisers.
// Every key is declared once in sections.cpp (type, range, doc); parsing, `config show`,
// `config docs` and docs/config.md all come from that table.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace harvest {

struct ModelConfig {
  std::string preset = "tiny";  // tiny | S/16 | B/16 | L/14
  int64_t frames = 8;
  int64_t image_size = 224;
  double drop_ratio = 0.9;
  int64_t context_length = 32;
  std::string vocab;  // BPE vocabulary (CLIP .txt.gz or HF vocab.json); empty: run's learned vocab
  double text_mask_ratio = 0.5;
  double mask_token_prob = 0.8;
  double random_token_prob = 0.1;
  int64_t fusion_layers = 2;
  std::string activation = "quick_gelu";  // MLP activation of both towers: quick_gelu | gelu
  double temperature_init = 0.01;
  bool freeze_text = true;
  bool grad_checkpointing = false;
  std::string init;  // harvest checkpoint to initialise weights from (imported CLIP, earlier run)
};

struct DataConfig {
  std::string train_manifest;
  std::string root;  // video paths are relative to this; empty: the manifest's folder
  int64_t batch_size = 8;  // clips per worker per micro-step
  double crop_scale_min = 0.5;
  double crop_scale_max = 1.0;
  bool flip = true;
  double sampling_fps = 0.0;  // 0: segment-based sparse sampling
  int64_t loaders_per_worker = 1;
  std::string loader_placement = "worker";  // worker: each worker starts its loaders; coordinator
  int64_t decode_threads = 2;
  int64_t queue_depth = 4;
  double decode_timeout_s = 30.0;
  int64_t max_resolution = 4096;
  double max_bad_fraction = 0.5;  // of the last 1000 samples; above it training stops (1: off)
  double loader_timeout_s = 60.0;  // a loader silent this long while awaited is restarted
  int64_t loader_max_restarts = 3;  // consecutive restarts without a batch before giving up
};

struct TrainConfig {
  int64_t steps = 1000;
  double lr = 2e-4;
  double min_lr_ratio = 0.01;
  double warmup_epochs = 0.5;
  int64_t unmasked_steps = 0;  // the last N steps train with patch dropping off
  double weight_decay = 0.2;
  double beta1 = 0.9;
  double beta2 = 0.98;
  double eps = 1e-6;
  double grad_clip = 1.0;
  int64_t accumulation = 1;
  double vtc_weight = 1.0;
  double mlm_weight = 1.0;
  int64_t seed = 42;
  bool deterministic = false;
  std::string precision = "auto";  // auto | fp32 | bf16
  std::string device = "auto";     // auto | cpu | cuda
  int64_t threads = 0;             // LibTorch intra-op threads; 0: one per core
  int64_t log_every = 10;
};

struct DistConfig {
  std::string backend = "auto";  // auto | nccl | gloo | inproc
  int64_t world_size = 1;
  int64_t min_workers = 0;  // 0: same as world_size (not elastic)
  int64_t max_workers = 0;  // 0: same as world_size
  double bucket_mb = 25.0;
  double timeout_s = 60.0;
  std::string host = "127.0.0.1";  // this worker's Gloo address (rank 0 serves the store there)
};

struct CheckpointConfig {
  std::string dir;  // empty: <run_dir>/checkpoints
  int64_t every_steps = 500;  // 0: only the final checkpoint
  int64_t keep_last = 3;
  int64_t keep_every = 0;  // also keep every Nth step; 0: none
  bool save_initial = false;  // a step-0 checkpoint before the first step (the sweep's baseline)
  bool async = true;
  std::string compression = "none";  // none | gzip
  std::string resume = "auto";       // auto | never | <checkpoint path>
};

struct EvalConfig {
  std::string manifest;
  std::vector<std::string> tasks = {"retrieval"};
  int64_t frames = 0;  // 0: model.frames
  int64_t batch_size = 32;
  int64_t every_steps = 0;  // 0: evaluate only in sweeps
  bool spare_workers = true;  // jobs also go to spare workers (needs manifest)
  double wise_ft_alpha = 0.0;
  std::string wise_ft_base;
  std::string classes;
  std::string templates;
};

struct CoordinatorConfig {
  std::string address = "tcp://127.0.0.1:29500";
  int64_t heartbeat_ms = 100;
  int64_t miss_limit = 5;
  double step_deadline_s = 300.0;
  int64_t max_restarts = 3;
  int64_t max_message_mb = 64;
  std::string curve_server_public;
  std::string curve_server_secret;
  std::string curve_client_public;
  std::string curve_client_secret;
  std::string journal;  // empty: <run_dir>/journal.log
  double rendezvous_wait_s = 2.0;   // wait this long for a replacement worker before shrinking
  double reattach_grace_s = 5.0;    // after a restart, journal members must heartbeat within this
  std::string curve_authorized_keys;  // file of allowed client public keys (Z85, one per line)
  bool exit_when_done = false;        // exit 0 once training is finished and every member left
};

struct LoggingConfig {
  std::string level = "info";
  std::string run_dir = "runs/default";
  int64_t metrics_every = 1;
};

struct Config {
  ModelConfig model;
  DataConfig data;
  TrainConfig train;
  DistConfig dist;
  CheckpointConfig checkpoint;
  EvalConfig eval;
  CoordinatorConfig coordinator;
  LoggingConfig logging;
};

// Loads defaults < TOML file (optional) < --set overrides ("section.key=value"), validates
// everything once and throws Error(Config) listing every problem with key path and position
// (file:line:col, or "--set section.key").
Config load_config(const std::optional<std::string>& file, const std::vector<std::string>& overrides);

// Same, from TOML text already in memory (`origin` names it in errors, e.g. a checkpoint path).
Config parse_config(const std::string& toml_text, const std::string& origin,
                    const std::vector<std::string>& overrides = {});

// The resolved config as TOML (every key, in declaration order). parse_config(to_toml(c)) == c.
std::string to_toml(const Config& config);

// Markdown reference of every section and key (docs/config.md is this text).
std::string config_reference_markdown();

// Patch size (pixels) and other shape facts of a preset; throws Config naming model.preset.
int64_t preset_patch_size(const std::string& preset);

}  // namespace harvest
