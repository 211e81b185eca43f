// The `harvest` command tree: each command group registers its subcommands on the app.
// A group lives in cmd_<group>.cpp and only touches the components it needs.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <vector>

#include "core/config/config.hpp"
#include "worker/coordinated_worker.hpp"

namespace harvest::cli {

// --config FILE and repeated --set section.key=value, shared by every command that takes a config.
struct ConfigOptions {
  std::string file;
  std::vector<std::string> overrides;
  void add_to(CLI::App& cmd);
  Config load() const;
};

// Process-wide flags parsed before any subcommand runs.
struct GlobalOptions {
  std::string log_level = "info";
};

// The command group `name` (e.g. "data"), created on first use: several cmd_*.cpp files may
// add subcommands to one group.
CLI::App& command_group(CLI::App& app, const std::string& name, const std::string& description);

void add_version_command(CLI::App& app);
void add_config_commands(CLI::App& app);
void add_train_command(CLI::App& app);
void add_worker_command(CLI::App& app);  // worker (driven by the coordinator)
void add_run_command(CLI::App& app);     // run (local launcher)
void add_loader_command(CLI::App& app);  // loader (started by workers)
void add_coordinator_commands(CLI::App& app);  // coordinator, status, keygen
void add_model_commands(CLI::App& app);  // bench step
void add_data_commands(CLI::App& app);  // data frames|synth|import, bench decode
void add_tokenize_command(CLI::App& app);  // tokenize
void add_vocab_command(CLI::App& app);     // data vocab
void add_ckpt_commands(CLI::App& app);  // ckpt inspect|verify, bench checkpoint
void add_clip_commands(CLI::App& app);  // import-clip, embed
void add_eval_commands(CLI::App& app);  // eval, sweep
// What a spare `harvest worker` runs for an evalJob: a sweep of that one step folder with the
// config's [eval] section, on the worker's device, cancellable between batches (cmd_eval.cpp).
SpareEvaluator spare_evaluator(const Config& config);
void add_report_command(CLI::App& app);  // report

// "harvest 0.1.0 (git ...)", "LibTorch 2.11.0 (CUDA ...)", "NCCL 2.28.9 (loaded ...)", FFmpeg,
// HDF5, ZeroMQ and Cap'n Proto, one per line
std::string version_text();

}  // namespace harvest::cli
