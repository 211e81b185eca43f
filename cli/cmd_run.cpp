// harvest run --config X [--set k=v]...: the local launcher. Starts the coordinator and
// dist.world_size workers (each starts its own data.loaders_per_worker loaders) as child
// processes, restarts failed ones (coordinator.max_restarts in all), forwards SIGINT/SIGTERM
// (the workers agree on a step, save and commit a final checkpoint, then the coordinator stops)
// and exits 0 when training finished or stopped cleanly, 1 with the reason when it cannot
// recover. Children log to <run_dir>/logs/<name>.log; the last line printed is a JSON summary.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "checkpoint/commit.hpp"
#include "checkpoint/from_config.hpp"
#include "cli/commands.hpp"
#include "coordinator/launcher.hpp"
#include "coordinator/signal_watcher.hpp"
#include "core/error.hpp"
#include "worker/rank_trainer.hpp"

namespace harvest::cli {
namespace fs = std::filesystem;
namespace {

std::string own_executable() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  HARVEST_REQUIRE(!ec, Runtime, "cannot find this program's path (/proc/self/exe): ", ec.message());
  return exe.string();
}

// The config every child reads: the user's, resolved, with the thread count split between the
// local workers (train.threads = 0 means the machine's cores divided by them).
Config resolve_for_children(Config config) {
  if (config.train.threads == 0)
    config.train.threads = std::max<int64_t>(
        1, static_cast<int64_t>(std::thread::hardware_concurrency()) / config.dist.world_size);
  return config;
}

std::vector<coord::ChildSpec> children(const Config& config, const fs::path& config_file) {
  const std::string exe = own_executable();
  const fs::path logs = fs::path(config.logging.run_dir) / "logs";
  std::vector<coord::ChildSpec> out;
  coord::ChildSpec coordinator;
  coordinator.name = "coordinator";
  coordinator.argv = {exe, "coordinator", "--config", config_file.string()};
  coordinator.log_path = (logs / "coordinator.log").string();
  coordinator.stop_last = true;
  out.push_back(coordinator);
  for (int64_t i = 0; i < config.dist.world_size; ++i) {
    coord::ChildSpec worker;
    worker.name = cat("worker", i);
    worker.argv = {exe, "worker", "--config", config_file.string(), "--rank", std::to_string(i)};
    worker.log_path = (logs / (worker.name + ".log")).string();
    worker.completes_job = true;
    out.push_back(worker);
  }
  return out;
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto options = std::make_shared<ConfigOptions>();
  auto* cmd = app.add_subcommand(
      "run",
      "Train with a local coordinator and dist.world_size worker processes; JSON summary last");
  options->add_to(*cmd);
  cmd->callback([options] {
    const Config config = resolve_for_children(options->load());
    require_trainable(config);
    HARVEST_REQUIRE(config.dist.backend == "gloo" || config.dist.backend == "auto", Config,
                    "dist.backend = ", config.dist.backend,
                    ": harvest run trains on CPU with Gloo workers (use gloo or auto)");
    const fs::path run_dir = config.logging.run_dir;
    fs::create_directories(run_dir / "logs");
    const fs::path config_file = run_dir / "config.toml";
    std::ofstream(config_file) << to_toml(config);

    coord::SignalWatcher signals;  // before the launcher forks: children unblock the signals
    coord::LauncherOptions launch;
    launch.max_restarts = config.coordinator.max_restarts;
    launch.grace = std::chrono::milliseconds(
        static_cast<int64_t>(1000 * std::max(60.0, config.dist.timeout_s)));
    spdlog::info("run {}: coordinator at {} and {} worker(s); logs in {}", run_dir.string(),
                 config.coordinator.address, config.dist.world_size, (run_dir / "logs").string());
    coord::Launcher launcher(children(config, config_file), launch);
    const coord::LaunchResult result = launcher.run(signals.stop());

    nlohmann::json summary{
        {"exit_code", result.exit_code}, {"reason", result.reason}, {"restarts", result.restarts}};
    const fs::path checkpoints = checkpoint::checkpoint_dir(config);
    if (const auto manifest = checkpoint::read_manifest(checkpoints);
        manifest && !manifest->committed.empty()) {
      summary["checkpoint_step"] = manifest->committed.front().step;
      summary["checkpoint"] = (checkpoints / manifest->committed.front().name).string();
    }
    std::cout << summary.dump() << std::endl;
    HARVEST_REQUIRE(result.exit_code == 0, Runtime,
                    "harvest run could not recover: ", result.reason);
    spdlog::info("run {}: {}", run_dir.string(), result.reason);
  });
}

}  // namespace harvest::cli
