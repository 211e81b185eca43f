// harvest run --config X [--set k=v]...: the local launcher. Starts the coordinator and
// dist.world_size workers (each starts its own data.loaders_per_worker loaders, or with
// data.loader_placement = coordinator the launcher starts loaders_per_worker x world_size
// `harvest loader` processes the coordinator deals to the workers; with eval.every_steps and
// eval.manifest set, an eval process `harvest sweep RUN --coordinator` too) as child processes, restarts failed ones (coordinator.max_restarts in all), forwards SIGINT/SIGTERM
// (the workers agree on a step, save and commit a final checkpoint, then the coordinator stops)
// and exits 0 when training finished or stopped cleanly, 1 with the reason when it cannot
// recover. Children log to <run_dir>/logs/<name>.log; the last line printed is a JSON summary.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "checkpoint/commit.hpp"
#include "checkpoint/from_config.hpp"
#include "cli/commands.hpp"
#include "coordinator/launcher.hpp"
#include "coordinator/signal_watcher.hpp"
#include "core/json.hpp"
#include "core/cpus.hpp"
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
        1, static_cast<int64_t>(usable_cpus()) / config.dist.world_size);
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
    worker.argv.insert(worker.argv.end(), {"--device", std::to_string(i)});
    worker.log_path = (logs / (worker.name + ".log")).string();
    worker.completes_job = true;
    out.push_back(worker);
  }
  if (config.eval.every_steps > 0 && !config.eval.manifest.empty()) {
    // Evaluates committed checkpoints while training runs; done once the last one is evaluated.
    coord::ChildSpec evaluator;
    evaluator.name = "eval0";
    evaluator.argv = {exe, "sweep", config.logging.run_dir, "--coordinator", config.coordinator.address};
    evaluator.log_path = (logs / "eval0.log").string();
    evaluator.completes_job = true;
    evaluator.stop_last = true;
    out.push_back(evaluator);
  }
  if (config.data.loader_placement == "coordinator") {
    // The coordinator deals these to the workers (each worker starts none of its own).
    for (int64_t i = 0; i < config.data.loaders_per_worker * config.dist.world_size; ++i) {
      coord::ChildSpec loader;
      loader.name = cat("loader", i);
      loader.argv = {exe, "loader", "--config", config_file.string()};
      loader.log_path = (logs / (loader.name + ".log")).string();
      loader.stop_last = true;  // a worker's final step may still need a batch
      out.push_back(loader);
    }
  }
  return out;
}

// The console's view of a run whose workers log to files: every `every`, rank 0's newest step
// record from metrics.jsonl as one progress line with an ETA (from the mean step time so far).
class ProgressPrinter {
 public:
  ProgressPrinter(fs::path metrics, int64_t total_steps, std::chrono::seconds every)
      : metrics_(std::move(metrics)), total_(total_steps), every_(every),
        thread_([this] { loop(); }) {}
  ~ProgressPrinter() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!wake_.wait_for(lock, every_, [this] { return done_; })) print_latest();
  }

  void print_latest() {
    std::ifstream in(metrics_);
    if (!in) return;
    in.seekg(offset_);
    std::string line;
    nlohmann::json latest;
    while (std::getline(in, line)) {
      if (in.eof()) break;  // a line still being written
      offset_ += static_cast<std::streamoff>(line.size() + 1);
      auto j = parse_json_or_discarded(line);
      if (j.is_discarded() || !j.contains("step") || !j.contains("step_s")) continue;
      if (j.contains("rank") && j["rank"] != 0) continue;
      step_seconds_ += j["step_s"].get<double>();
      ++steps_seen_;
      latest = std::move(j);
    }
    if (latest.is_null()) return;
    const int64_t step = latest["step"].get<int64_t>();
    const double eta = step_seconds_ / static_cast<double>(steps_seen_) *
                       static_cast<double>(std::max<int64_t>(0, total_ - step));
    spdlog::info("step {}/{} loss {:.4f} (vtc {:.4f} mlm {:.4f}) {:.1f} clips/s/worker data-wait "
                 "{:.1f}% eta {:.0f}s",
                 step, total_, latest.value("loss", 0.0), latest.value("vtc", 0.0),
                 latest.value("mlm", 0.0), latest.value("clips_per_s", 0.0),
                 100.0 * latest.value("data_wait_fraction", 0.0), eta);
  }

  fs::path metrics_;
  int64_t total_;
  std::chrono::seconds every_;
  std::streamoff offset_ = 0;
  double step_seconds_ = 0;
  int64_t steps_seen_ = 0;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool done_ = false;
  std::thread thread_;  // last: starts once the members above exist
};

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
    HARVEST_REQUIRE(config.dist.backend != "inproc", Config,
                    "dist.backend = inproc: harvest run starts a group of workers (use auto, nccl "
                    "or gloo; harvest train runs one in-process worker)");
    // The workers' device and library, checked once here rather than in every child's log.
    collective_backend(config.dist, training_device(config.train, 0));
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
    std::optional<ProgressPrinter> progress;
    progress.emplace(run_dir / "metrics.jsonl", config.train.steps, std::chrono::seconds(15));
    const coord::LaunchResult result = launcher.run(signals.stop());
    progress.reset();

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
