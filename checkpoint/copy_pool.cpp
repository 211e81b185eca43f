#include "checkpoint/copy_pool.hpp"

#include <algorithm>
#include <cstring>

namespace harvest::checkpoint {

CopyPool::CopyPool(int helpers) {
  for (int i = 0; i < helpers; ++i) threads_.emplace_back([this] { help(); });
}

CopyPool::~CopyPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
}

void CopyPool::run(const std::vector<CopyTask>& tasks) {
  std::lock_guard<std::mutex> serial(run_mutex_);
  std::vector<CopyTask> pieces;
  std::size_t total = 0;
  for (const CopyTask& t : tasks) {
    for (std::size_t done = 0; done < t.size; done += kPieceBytes)
      pieces.push_back({t.dst + done, t.src + done, std::min(kPieceBytes, t.size - done)});
    total += t.size;
  }
  if (threads_.empty() || total < 2 * kPieceBytes) {
    for (const CopyTask& p : pieces) std::memcpy(p.dst, p.src, p.size);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    pieces_ = std::move(pieces);
    next_ = 0;
    busy_helpers_ = static_cast<int>(threads_.size());
    ++generation_;
  }
  wake_.notify_all();
  work();
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [this] { return busy_helpers_ == 0; });
  pieces_.clear();
}

void CopyPool::work() {
  for (;;) {
    CopyTask piece;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (next_ == pieces_.size()) return;
      piece = pieces_[next_++];
    }
    std::memcpy(piece.dst, piece.src, piece.size);
  }
}

void CopyPool::help() {
  unsigned long seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
    }
    work();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      --busy_helpers_;
    }
    done_.notify_all();
  }
}

}  // namespace harvest::checkpoint
