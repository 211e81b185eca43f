// Launcher: the process supervisor behind `harvest run`. Starts each child (coordinator, workers,
// loaders) as a process, restarts one that fails (up to coordinator.max_restarts restarts in
// all), forwards SIGINT/SIGTERM to every child and gives them a grace period to finish (final
// checkpoint) before SIGKILL, and ends with an exit status and a reason a person can act on.
//
// Children die with the launcher (PR_SET_PDEATHSIG), so a killed launcher leaves no orphans. Each
// runs in its own process group: a terminal's Ctrl-C reaches the launcher only, which forwards it
// in order (workers first, the coordinator last). A child that exits 2 (usage or config error)
// is not restarted: it would fail the same way.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "core/time.hpp"

namespace harvest::coord {

struct ChildSpec {
  std::string name;               // "coordinator", "worker0", "loader1", ... (for logs and reasons)
  std::vector<std::string> argv;  // argv[0] is the executable path
  bool completes_job = false;     // workers: when every such child exited 0, the job is done
  std::string log_path;           // empty: inherit stdout/stderr
  // Signalled only once every other child exited (or the grace period ran out): the coordinator
  // must outlive the workers' final checkpoint, which it commits, and coordinator-placed loaders
  // the workers' last batches.
  bool stop_last = false;
};

struct LauncherOptions {
  int64_t max_restarts = 3;                      // restarts in all, over every child
  std::chrono::milliseconds grace{30000};        // after forwarding a stop signal, before SIGKILL
  std::chrono::milliseconds restart_delay{200};  // between a failure and its restart
};

struct LaunchResult {
  int exit_code = 0;  // 0: job done or stopped gracefully; 1: could not recover
  std::string reason;
  int64_t restarts = 0;
};

class Launcher {
 public:
  Launcher(std::vector<ChildSpec> children, LauncherOptions options);
  ~Launcher();  // kills (SIGKILL) and reaps any child still running
  Launcher(const Launcher&) = delete;
  Launcher& operator=(const Launcher&) = delete;

  // Runs until the job completes, cannot recover, or `stop` becomes a signal number (which is
  // forwarded to the children).
  LaunchResult run(const std::atomic<int>& stop);

  // Current pid of a child by name (for tests and logs); nullopt when not running.
  std::optional<pid_t> pid_of(const std::string& name) const;

 private:
  struct Child {
    ChildSpec spec;
    pid_t pid = -1;
    std::optional<int> exit_status;  // 0..255, or 128 + signal
    int starts = 0;
  };

  void start(Child& child);
  // Collects exited children without blocking; returns those that exited since the last call.
  std::vector<Child*> reap();
  LaunchResult stop_all(int signal, LaunchResult result);
  // Signals the running children with `last` == spec.stop_last and waits for them until `deadline`;
  // false when some were still running then (they are killed).
  bool stop_group(int signal, bool last, const Deadline& deadline);
  std::string failure(const Child& child) const;

  std::vector<Child> children_;
  LauncherOptions options_;
};

// "exit 3", "killed by SIGKILL", ...
std::string describe_exit(int status);

}  // namespace harvest::coord
