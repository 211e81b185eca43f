// Recycles snapshot buffers between saves. The blocking part of a save copies every tensor into
// host memory; into a fresh buffer that costs a page fault per 4 KiB (65k for 256 MB, often
// slower than the copy itself), into the previous snapshot's buffers it is a plain memcpy.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <vector>

#include "checkpoint/host_buffer.hpp"

namespace harvest::checkpoint {

class BufferPool {
 public:
  // A pooled buffer of exactly `size` bytes, or a new one.
  HostBuffer take(std::size_t size);
  // Replaces the pool's content with these buffers (a finished snapshot's): the pool never holds
  // more than one snapshot's worth of memory.
  void replace(std::vector<HostBuffer> buffers);
  std::size_t pooled_bytes() const;

 private:
  mutable std::mutex mutex_;
  std::multimap<std::size_t, HostBuffer> free_;
};

}  // namespace harvest::checkpoint
