// harvest worker --config X [--rank R]: one training process driven by the coordinator at
// coordinator.address (started by `harvest run`, or by hand / Slurm / k8s on a cluster). Exit 0
// when training finished or SIGINT/SIGTERM stopped it after a committed final checkpoint.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>

#include "cli/commands.hpp"
#include "coordinator/signal_watcher.hpp"
#include "core/log.hpp"
#include "worker/coordinated_worker.hpp"

namespace harvest::cli {

void add_worker_command(CLI::App& app) {
  auto options = std::make_shared<ConfigOptions>();
  auto worker_options = std::make_shared<WorkerOptions>();
  auto* cmd = app.add_subcommand(
      "worker", "A training worker driven by the coordinator (harvest run starts them)");
  options->add_to(*cmd);
  cmd->add_option("--rank", worker_options->desired_rank,
                  "Rank to ask the coordinator for (-1: any); a restarted worker keeps its rank")
      ->capture_default_str();
  cmd->add_option("--device", worker_options->device,
                  "CUDA device index on this node (-1: $LOCAL_RANK, else $SLURM_LOCALID, else 0); "
                  "unused on CPU")
      ->capture_default_str();
  cmd->callback([options, worker_options] {
    const Config config = options->load();
    init_logging(LogIdentity{"worker", -1}, parse_log_level(config.logging.level, "logging.level"));
    coord::SignalWatcher signals;  // before any other thread
    WorkerOptions worker = *worker_options;
    worker.spare_eval = spare_evaluator(config);
    const int code = run_coordinated_worker(config, worker, signals.stop());
    spdlog::default_logger()->flush();
    std::fflush(nullptr);
    // Groups of aborted generations are left to the process' end with their Gloo threads (see
    // worker/gloo_group.cpp): leave without running static destructors under them.
    std::_Exit(code);
  });
}

}  // namespace harvest::cli
