#include "coordinator/signal_watcher.hpp"

#include <pthread.h>

namespace harvest::coord {

SignalWatcher::SignalWatcher() {
  sigemptyset(&set_);
  sigaddset(&set_, SIGINT);
  sigaddset(&set_, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  thread_ = std::thread([this] {
    const timespec tick{0, 100 * 1000 * 1000};
    while (!done_.load()) {
      const int sig = sigtimedwait(&set_, nullptr, &tick);
      if (sig > 0) {
        int none = 0;
        stop_.compare_exchange_strong(none, sig);  // the first signal decides the reason
      }
    }
  });
}

SignalWatcher::~SignalWatcher() {
  done_ = true;
  thread_.join();
  // The signals stay blocked: a second SIGTERM must not kill a process that is ending cleanly.
}

}  // namespace harvest::coord
