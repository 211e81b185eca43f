// An owned, uninitialised host byte buffer: snapshots copy tensors straight into it, so
// zero-filling first (std::vector) would double the memory traffic of the blocking part of a save.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>

namespace harvest::checkpoint {

class HostBuffer {
 public:
  HostBuffer() = default;
  explicit HostBuffer(std::size_t size)
      : data_(size ? new std::byte[size] : nullptr), size_(size) {}
  static HostBuffer copy_of(const void* src, std::size_t size) {
    HostBuffer b(size);
    if (size) std::memcpy(b.data(), src, size);
    return b;
  }

  std::byte* data() { return data_.get(); }
  const std::byte* data() const { return data_.get(); }
  std::size_t size() const { return size_; }

 private:
  std::unique_ptr<std::byte[]> data_;
  std::size_t size_ = 0;
};

}  // namespace harvest::checkpoint
