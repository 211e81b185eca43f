// Parallel memcpy for the blocking part of a save. Copying a snapshot is memory-bound: one core
// moves about 9 GB/s here, two about 13, so the training thread hands part of the copy to a few
// helper threads that sleep between saves and waits for them.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>
#include <vector>

namespace harvest::checkpoint {

struct CopyTask {
  std::byte* dst = nullptr;
  const std::byte* src = nullptr;
  std::size_t size = 0;
};

class CopyPool {
 public:
  // `helpers` threads beside the caller; 0 copies on the caller's thread alone.
  explicit CopyPool(int helpers);
  ~CopyPool();
  CopyPool(const CopyPool&) = delete;
  CopyPool& operator=(const CopyPool&) = delete;

  // Performs every copy (in pieces of at most kPieceBytes, shared out between the caller and the
  // helpers) and returns when all are done. Only one run at a time per pool.
  void run(const std::vector<CopyTask>& tasks);
  int helpers() const { return static_cast<int>(threads_.size()); }

  static constexpr std::size_t kPieceBytes = std::size_t{4} << 20;

 private:
  void help();
  void work();

  std::mutex run_mutex_;  // serialises run()
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::vector<CopyTask> pieces_;
  std::size_t next_ = 0;  // next piece to take (under mutex_)
  int busy_helpers_ = 0;  // helpers still working on this run
  unsigned long generation_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace harvest::checkpoint
