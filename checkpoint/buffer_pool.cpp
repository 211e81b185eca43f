#include "checkpoint/buffer_pool.hpp"

namespace harvest::checkpoint {

HostBuffer BufferPool::take(std::size_t size) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = free_.find(size);
    if (it != free_.end()) {
      HostBuffer b = std::move(it->second);
      free_.erase(it);
      return b;
    }
  }
  return HostBuffer(size);
}

void BufferPool::replace(std::vector<HostBuffer> buffers) {
  std::multimap<std::size_t, HostBuffer> fresh;
  for (auto& b : buffers)
    if (b.size() > 0) fresh.emplace(b.size(), std::move(b));
  std::multimap<std::size_t, HostBuffer> old;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    old.swap(free_);
    free_.swap(fresh);
  }
  // `old` is freed here, outside the lock.
}

std::size_t BufferPool::pooled_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::size_t n = 0;
  for (const auto& [size, b] : free_) n += size;
  return n;
}

}  // namespace harvest::checkpoint
