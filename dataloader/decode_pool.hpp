// DecodePool: decode threads taking samples in submission order, with a per-sample deadline.
// FFmpeg's interrupt callback already stops a slow reader at data.decode_timeout_s; a decode that
// still does not return (a blocking read on a stalled network file system, a decoder stuck in a
// loop) is abandoned once it has run `deadline_s`: wait() hands back a `timeout` bad sample, the
// thread is left to finish on its own and a fresh thread takes its place, so one hung file costs
// one thread for a while and never stops the stream. Jobs must own what they touch (capture
// shared_ptrs): an abandoned job may outlive the pool.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>

#include "dataloader/sample_decoder.hpp"

namespace harvest::data {

class DecodePool {
 public:
  using Job = std::function<DecodedSample()>;
  struct Task;  // one submitted job's state, shared with the thread that runs it

  // deadline_s <= 0: never abandon.
  DecodePool(int threads, double deadline_s);
  // Drops queued jobs and waits for running ones, at most the deadline: a thread still running
  // then (like an abandoned one) finishes on its own.
  ~DecodePool();
  DecodePool(const DecodePool&) = delete;
  DecodePool& operator=(const DecodePool&) = delete;

  std::shared_ptr<Task> submit(Job job);
  // The job's result, waiting at most `wait`; nullopt if not ready yet. A job running past the
  // deadline is abandoned and comes back as a BadReason::Timeout sample. Rethrows the job's error.
  std::optional<DecodedSample> wait_for(const std::shared_ptr<Task>& task,
                                        std::chrono::milliseconds wait);
  // The job's result, blocking (never past the deadline).
  DecodedSample wait(const std::shared_ptr<Task>& task);

  int64_t abandoned() const;

 private:
  struct Shared;
  static void thread_loop(const std::shared_ptr<Shared>& shared);
  void start_thread();
  std::shared_ptr<Shared> shared_;
  double deadline_s_;
};

}  // namespace harvest::data
