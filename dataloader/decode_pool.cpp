#include "dataloader/decode_pool.hpp"

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include "core/error.hpp"
#include "core/time.hpp"

namespace harvest::data {

struct DecodePool::Task {
  enum class Status { Queued, Running, Done, Abandoned };
  Job job;
  std::mutex mutex;
  std::condition_variable done;
  Status status = Status::Queued;
  Clock::time_point started;
  std::optional<DecodedSample> result;
  std::exception_ptr error;
};

// Everything a pool thread touches: it outlives the pool while an abandoned thread still runs.
struct DecodePool::Shared {
  std::mutex mutex;
  std::condition_variable wake;     // a task was queued, or stop
  std::condition_variable stopped;  // a (non-abandoned) thread exited
  std::deque<std::shared_ptr<Task>> queue;
  bool stop = false;
  int live = 0;  // threads the pool waits for at destruction (abandoned ones are not counted)
  int64_t abandoned = 0;
};

DecodePool::DecodePool(int threads, double deadline_s)
    : shared_(std::make_shared<Shared>()), deadline_s_(deadline_s) {
  HARVEST_REQUIRE(threads >= 1, Usage, "decode pool: ", threads, " threads (need >= 1)");
  for (int i = 0; i < threads; ++i) start_thread();
}

DecodePool::~DecodePool() {
  std::unique_lock<std::mutex> lock(shared_->mutex);
  shared_->stop = true;
  shared_->queue.clear();
  shared_->wake.notify_all();
  const auto all_stopped = [this] { return shared_->live == 0; };
  if (deadline_s_ <= 0) {
    shared_->stopped.wait(lock, all_stopped);
  } else if (!shared_->stopped.wait_for(lock, std::chrono::duration<double>(deadline_s_),
                                        all_stopped)) {
    spdlog::warn("decode pool: {} decode(s) still running after {} s at shutdown; left behind",
                 shared_->live, deadline_s_);
  }
}

void DecodePool::start_thread() {
  {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    ++shared_->live;
  }
  // Detached: an abandoned thread cannot be joined; the others are waited for through `live`.
  std::thread([shared = shared_] { thread_loop(shared); }).detach();
}

std::shared_ptr<DecodePool::Task> DecodePool::submit(Job job) {
  auto task = std::make_shared<Task>();
  task->job = std::move(job);
  {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    shared_->queue.push_back(task);
  }
  shared_->wake.notify_one();
  return task;
}

std::optional<DecodedSample> DecodePool::wait_for(const std::shared_ptr<Task>& task,
                                                  std::chrono::milliseconds wait) {
  const auto until = Clock::now() + wait;
  std::unique_lock<std::mutex> lock(task->mutex);
  for (;;) {
    if (task->status == Task::Status::Done) {
      if (task->error) std::rethrow_exception(task->error);
      HARVEST_ASSERT(task->result.has_value(), "decode task done without a result");
      DecodedSample out = std::move(*task->result);
      task->result.reset();
      return out;
    }
    HARVEST_ASSERT(task->status != Task::Status::Abandoned, "decode task waited on twice");
    auto wake_at = until;
    if (task->status == Task::Status::Running && deadline_s_ > 0) {
      const auto deadline = task->started + std::chrono::duration_cast<Clock::duration>(
                                                std::chrono::duration<double>(deadline_s_));
      if (Clock::now() >= deadline) {
        task->status = Task::Status::Abandoned;
        lock.unlock();
        {
          std::lock_guard<std::mutex> pool_lock(shared_->mutex);
          --shared_->live;  // that thread now ends on its own, when (if) its job returns
          ++shared_->abandoned;
        }
        shared_->stopped.notify_all();
        start_thread();
        DecodedSample bad;
        bad.bad = BadReason::Timeout;
        bad.bad_message = cat("decode still running after ", deadline_s_,
                              " s: abandoned (the thread is replaced)");
        return bad;
      }
      wake_at = std::min(wake_at, deadline);
    }
    if (Clock::now() >= until) return std::nullopt;
    task->done.wait_until(lock, wake_at);
  }
}

DecodedSample DecodePool::wait(const std::shared_ptr<Task>& task) {
  for (;;) {
    if (auto sample = wait_for(task, std::chrono::milliseconds(1000))) return std::move(*sample);
  }
}

int64_t DecodePool::abandoned() const {
  std::lock_guard<std::mutex> lock(shared_->mutex);
  return shared_->abandoned;
}

void DecodePool::thread_loop(const std::shared_ptr<Shared>& shared) {
  for (;;) {
    std::shared_ptr<Task> task;
    {
      std::unique_lock<std::mutex> lock(shared->mutex);
      shared->wake.wait(lock, [&] { return shared->stop || !shared->queue.empty(); });
      if (shared->stop) {
        --shared->live;
        shared->stopped.notify_all();
        return;
      }
      task = std::move(shared->queue.front());
      shared->queue.pop_front();
    }
    {
      std::lock_guard<std::mutex> lock(task->mutex);
      task->status = Task::Status::Running;
      task->started = Clock::now();
    }
    std::optional<DecodedSample> result;
    std::exception_ptr error;
    try {
      result = task->job();
    } catch (...) {
      error = std::current_exception();
    }
    task->job = nullptr;  // release what the job captured
    std::lock_guard<std::mutex> lock(task->mutex);
    if (task->status == Task::Status::Abandoned) {
      spdlog::debug("an abandoned decode returned; its thread exits");
      return;  // a replacement thread already runs; `live` no longer counts this one
    }
    task->status = Task::Status::Done;
    task->result = std::move(result);
    task->error = error;
    task->done.notify_all();
  }
}

}  // namespace harvest::data
