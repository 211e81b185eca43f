#include "checkpoint/saver.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "checkpoint/commit.hpp"
#include "core/cpus.hpp"
#include "core/time.hpp"

namespace harvest::checkpoint {

namespace {
int default_copy_helpers() {
  const int cores = usable_cpus();
  return std::clamp(cores - 1, 0, 3);
}
}  // namespace

CheckpointSaver::CheckpointSaver(SaverOptions options)
    : options_(std::move(options)),
      copier_(std::make_shared<CopyPool>(options_.copy_helpers < 0 ? default_copy_helpers()
                                                                   : options_.copy_helpers)) {
  if (options_.async) thread_ = std::thread([this] { run(); });
}

CheckpointSaver::~CheckpointSaver() {
  {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [this] { return !busy_; });
    stopping_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

SaveStatus CheckpointSaver::write(const Snapshot& snapshot) const {
  SaveStatus status;
  status.step = snapshot.meta.step;
  const Stopwatch watch;
  try {
    const auto part = write_part(snapshot, options_.dir, options_.write);
    if (snapshot.meta.world_size == 1) {
      commit_checkpoint(options_.dir, snapshot.meta.step, 1);
      // The checkpoint is committed: a failure to delete old ones is a warning, not a failed save.
      try {
        apply_retention(options_.dir, options_.retention);
      } catch (const std::exception& e) {
        spdlog::warn("checkpoint retention in {} failed (will retry after the next save): {}",
                     options_.dir.string(), e.what());
      }
    } else if (options_.on_part_durable) {
      options_.on_part_durable(snapshot.meta.step, part);
    }
    status.ok = true;
  } catch (const std::exception& e) {
    status.error = e.what();
  }
  status.seconds = watch.seconds();
  if (status.ok) {
    spdlog::info("checkpoint step {} saved in {:.2f} s ({:.1f} MB)", status.step, status.seconds,
                 static_cast<double>(snapshot.total_bytes()) / 1e6);
  } else {
    spdlog::error(
        "checkpoint step {} failed (training continues; the next interval saves again): {}",
        status.step, status.error);
  }
  return status;
}

void CheckpointSaver::save(Snapshot snapshot) {
  snapshot.copy_pending();  // the blocking part: after this the caller may change its tensors
  if (!options_.async) {
    const SaveStatus status = write(snapshot);
    std::lock_guard<std::mutex> lock(mutex_);
    if (!status.ok) ++failed_;
    last_ = status;
    return;
  }
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [this] { return !busy_; });
  pending_ = std::move(snapshot);
  busy_ = true;
  lock.unlock();
  changed_.notify_all();
}

std::optional<SaveStatus> CheckpointSaver::wait() {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [this] { return !busy_; });
  return last_;
}

std::optional<SaveStatus> CheckpointSaver::status() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return last_;
}

int64_t CheckpointSaver::failed_saves() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return failed_;
}

void CheckpointSaver::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    changed_.wait(lock, [this] { return stopping_ || pending_.has_value(); });
    if (!pending_) return;  // stopping with nothing left to write
    Snapshot snapshot = std::move(*pending_);
    pending_.reset();
    lock.unlock();
    const SaveStatus status = write(snapshot);
    {
      Snapshot released = std::move(snapshot);  // buffers back to the pool before reporting idle
    }
    lock.lock();
    if (!status.ok) ++failed_;
    last_ = status;
    busy_ = false;
    changed_.notify_all();
  }
}

}  // namespace harvest::checkpoint
