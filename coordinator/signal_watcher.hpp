// SignalWatcher: SIGINT/SIGTERM are blocked in every thread and taken by sigtimedwait on one
// thread that sets stop(): no signal handler and no global flag. Construct it before any other
// thread exists (they inherit the blocked mask); processes started later must unblock them
// (the launcher and the loader spawner do).
#pragma once

#include <signal.h>

#include <atomic>
#include <thread>

namespace harvest::coord {

class SignalWatcher {
 public:
  SignalWatcher();
  ~SignalWatcher();
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

  // 0, or the number of the first signal received.
  const std::atomic<int>& stop() const { return stop_; }

 private:
  sigset_t set_;
  std::atomic<int> stop_{0};
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace harvest::coord
