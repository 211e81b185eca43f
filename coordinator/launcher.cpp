#include "coordinator/launcher.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "core/check_sys.hpp"
#include "core/error.hpp"
#include "core/time.hpp"

namespace harvest::coord {

std::string describe_exit(int status) {
  if (status > 128) {
    const char* name = sigabbrev_np(status - 128);
    return cat("killed by SIG", name ? name : std::to_string(status - 128));
  }
  return cat("exit ", status);
}

Launcher::Launcher(std::vector<ChildSpec> children, LauncherOptions options) : options_(options) {
  HARVEST_REQUIRE(!children.empty(), Usage, "launcher: nothing to launch");
  for (auto& spec : children) {
    HARVEST_REQUIRE(!spec.argv.empty(), Usage, "launcher: child '", spec.name, "' has no command");
    Child child;
    child.spec = std::move(spec);
    children_.push_back(std::move(child));
  }
}

Launcher::~Launcher() {
  for (auto& c : children_) {
    if (c.pid > 0 && !c.exit_status) {
      ::kill(c.pid, SIGKILL);
      ::waitpid(c.pid, nullptr, 0);
    }
  }
}

std::optional<pid_t> Launcher::pid_of(const std::string& name) const {
  for (const auto& c : children_)
    if (c.spec.name == name && c.pid > 0 && !c.exit_status) return c.pid;
  return std::nullopt;
}

void Launcher::start(Child& child) {
  // Everything the child needs is prepared before fork: after it only async-signal-safe calls.
  std::vector<char*> argv;
  for (auto& a : child.spec.argv) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  int log_fd = -1;
  if (!child.spec.log_path.empty())
    log_fd = check_sys(
        ::open(child.spec.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644),
        "open", child.spec.log_path);
  const pid_t pid = check_sys(::fork(), "fork", child.spec.name);
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the launcher died before prctl took effect
    ::setpgid(0, 0);  // out of the terminal's process group: signals come through the launcher
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none,
                  nullptr);  // the launcher blocks SIGINT/SIGTERM; children must not
    if (log_fd >= 0) {
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  if (log_fd >= 0) ::close(log_fd);
  child.pid = pid;
  child.exit_status.reset();
  ++child.starts;
  spdlog::info("launcher: started {} (pid {}){}", child.spec.name, pid,
               child.starts > 1 ? cat(", start ", child.starts) : std::string());
}

std::vector<Launcher::Child*> Launcher::reap() {
  std::vector<Child*> exited;
  for (auto& c : children_) {
    if (c.pid <= 0 || c.exit_status) continue;
    int status = 0;
    const pid_t r = ::waitpid(c.pid, &status, WNOHANG);
    if (r == c.pid) {
      c.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      exited.push_back(&c);
    }
  }
  return exited;
}

bool Launcher::stop_group(int signal, bool last, const Deadline& deadline) {
  for (auto& c : children_)
    if (c.spec.stop_last == last && c.pid > 0 && !c.exit_status) ::kill(c.pid, signal);
  for (;;) {
    reap();
    bool running = false;
    for (auto& c : children_)
      running = running || (c.spec.stop_last == last && c.pid > 0 && !c.exit_status);
    if (!running) return true;
    if (deadline.expired()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (auto& c : children_) {
    if (c.spec.stop_last == last && c.pid > 0 && !c.exit_status) {
      spdlog::warn("launcher: {} (pid {}) still running {} ms after SIG{}; killing it", c.spec.name,
                   c.pid, options_.grace.count(), sigabbrev_np(signal));
      ::kill(c.pid, SIGKILL);
      ::waitpid(c.pid, nullptr, 0);
      c.exit_status = 128 + SIGKILL;
    }
  }
  return false;
}

LaunchResult Launcher::stop_all(int signal, LaunchResult result) {
  const Deadline deadline(options_.grace);
  bool all_clean = stop_group(signal, /*last=*/false, deadline);
  // The last ones get their own (short) grace if the others used it all up.
  all_clean = stop_group(signal, /*last=*/true,
                         deadline.expired() ? Deadline(std::chrono::seconds(5)) : deadline) &&
              all_clean;
  if (result.exit_code == 0 && !all_clean) {
    result.exit_code = 1;
    result.reason +=
        cat("; some children did not stop within ", options_.grace.count(), " ms and were killed");
  }
  return result;
}

std::string Launcher::failure(const Child& c) const {
  return cat(c.spec.name, " failed (", describe_exit(*c.exit_status),
             c.spec.log_path.empty() ? std::string() : cat("; log: ", c.spec.log_path), ")");
}

LaunchResult Launcher::run(const std::atomic<int>& stop) {
  for (auto& c : children_) start(c);
  LaunchResult result;
  for (;;) {
    if (const int sig = stop.load(); sig != 0) {
      spdlog::info("launcher: SIG{} received; forwarding to every child (grace {} ms)",
                   sigabbrev_np(sig), options_.grace.count());
      result.reason = cat("stopped by SIG", sigabbrev_np(sig));
      result = stop_all(sig, result);
      // Graceful stop: children that exit 0 on the signal (after their final checkpoint) make it 0.
      for (const auto& c : children_)
        if (c.exit_status && *c.exit_status != 0 && result.exit_code == 0) {
          result.exit_code = 1;
          result.reason += cat("; ", c.spec.name, " ended with ", describe_exit(*c.exit_status));
        }
      return result;
    }
    for (Child* c : reap()) {
      if (*c->exit_status == 0) {
        spdlog::info("launcher: {} finished", c->spec.name);
        continue;
      }
      if (*c->exit_status == 2) {
        result.exit_code = 1;
        result.reason = cat(failure(*c), ": a usage or configuration error, not restarted");
        spdlog::error("launcher: {}; stopping every child", result.reason);
        return stop_all(SIGTERM, result);
      }
      if (result.restarts >= options_.max_restarts) {
        result.exit_code = 1;
        result.reason =
            cat(failure(*c), " and the restart budget is spent (", result.restarts,
                " restart(s) of coordinator.max_restarts = ", options_.max_restarts, ")");
        spdlog::error("launcher: {}; stopping every child", result.reason);
        return stop_all(SIGTERM, result);
      }
      ++result.restarts;
      spdlog::warn("launcher: {} (pid {}) failed: {}; restart {} of {}", c->spec.name, c->pid,
                   describe_exit(*c->exit_status), result.restarts, options_.max_restarts);
      std::this_thread::sleep_for(options_.restart_delay);
      start(*c);
    }
    bool has_completers = false, all_done = true;
    for (const auto& c : children_) {
      if (!c.spec.completes_job) continue;
      has_completers = true;
      all_done = all_done && c.exit_status && *c.exit_status == 0;
    }
    if (has_completers && all_done) {
      result.reason = "every worker finished";
      return stop_all(SIGTERM, result);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace harvest::coord
