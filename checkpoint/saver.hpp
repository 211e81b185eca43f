// CheckpointSaver: the worker's side of saving. The caller's only blocking work is filling a
// Snapshot with host copies at a step boundary; save() hands it to a background thread that writes
// the part durably and (world size 1) commits it and applies retention. A save waits for the
// previous one first. A failed save is logged and reported through status(), never thrown: the
// next interval saves fresh state again, which is the retry.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "checkpoint/retention.hpp"
#include "checkpoint/snapshot.hpp"
#include "checkpoint/writer.hpp"

namespace harvest::checkpoint {

struct SaverOptions {
  std::filesystem::path dir;
  WriteOptions write;
  bool async = true;
  RetentionPolicy retention;
  // Threads that help the caller copy a snapshot (Snapshot::add_deferred) beside its own; -1:
  // one less than the cores, at most 3 (the copy is memory-bound: more threads do not help).
  int copy_helpers = -1;
  // Called (on the writing thread) once this rank's part is durable, for a world size > 1: the
  // worker tells the coordinator, which commits when every rank has reported.
  std::function<void(int64_t step, const std::filesystem::path& part)> on_part_durable;
};

struct SaveStatus {
  int64_t step = 0;
  bool ok = false;
  std::string error;     // why it failed (empty when ok)
  double seconds = 0.0;  // write + commit time on the writing thread
};

class CheckpointSaver {
 public:
  explicit CheckpointSaver(SaverOptions options);
  // Finishes the save in flight (a checkpoint being written is not abandoned at shutdown).
  ~CheckpointSaver();
  CheckpointSaver(const CheckpointSaver&) = delete;
  CheckpointSaver& operator=(const CheckpointSaver&) = delete;

  // An empty snapshot whose buffers are recycled from the previous save (fill it, then save()).
  Snapshot snapshot() const { return Snapshot(pool_, copier_); }
  // Performs the snapshot's deferred copies (its sources may change once this returns), waits
  // for the previous save, then saves it: returns at once when async, after the write
  // otherwise. Never throws for I/O failures (see status()).
  void save(Snapshot snapshot);
  // Blocks until no save is in flight; returns the status of the last finished save, if any.
  std::optional<SaveStatus> wait();
  std::optional<SaveStatus> status() const;
  int64_t failed_saves() const;

 private:
  void run();
  SaveStatus write(const Snapshot& snapshot) const;

  SaverOptions options_;
  std::shared_ptr<BufferPool> pool_ = std::make_shared<BufferPool>();
  std::shared_ptr<CopyPool> copier_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::optional<Snapshot> pending_;
  bool busy_ = false;
  bool stopping_ = false;
  std::optional<SaveStatus> last_;
  int64_t failed_ = 0;
  std::thread thread_;  // last: starts after every member it uses is constructed
};

}  // namespace harvest::checkpoint
