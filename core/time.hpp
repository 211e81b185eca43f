// Monotonic time helpers: every wait in harvest has a Deadline.
#pragma once

#include <chrono>

namespace harvest {

using Clock = std::chrono::steady_clock;

class Stopwatch {
 public:
  Stopwatch() : start_(Clock::now()) {}
  double seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }
  void reset() { start_ = Clock::now(); }

 private:
  Clock::time_point start_;
};

class Deadline {
 public:
  explicit Deadline(std::chrono::milliseconds budget) : end_(Clock::now() + budget) {}
  static Deadline after_seconds(double s) {
    return Deadline(std::chrono::milliseconds(static_cast<long long>(s * 1000.0)));
  }
  bool expired() const { return Clock::now() >= end_; }
  // Milliseconds left, clamped at 0: ready for poll()/zmq_poll() timeouts.
  long long remaining_ms() const {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end_ - Clock::now());
    return left.count() > 0 ? left.count() : 0;
  }

 private:
  Clock::time_point end_;
};

}  // namespace harvest
