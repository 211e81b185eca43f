// Scoped bf16 autocast on CUDA, as `torch.autocast("cuda", torch.bfloat16)` is in Python.
#pragma once

#include <ATen/autocast_mode.h>

namespace harvest {

inline bool cuda_autocast_enabled() { return at::autocast::is_autocast_enabled(at::kCUDA); }

// No-op when `enabled` is false. Restores the previous state and drops the cast cache on exit,
// as torch.autocast does (the cache holds bf16 copies of the weights for one forward).
class CudaAutocast {
 public:
  explicit CudaAutocast(bool enabled) : active_(enabled), previous_(cuda_autocast_enabled()) {
    if (active_) set(true);
  }
  ~CudaAutocast() {
    if (!active_) return;
    set(previous_);
    if (!previous_) at::autocast::clear_cache();
  }
  CudaAutocast(const CudaAutocast&) = delete;
  CudaAutocast& operator=(const CudaAutocast&) = delete;

 private:
  static void set(bool on) {
    at::autocast::set_autocast_enabled(at::kCUDA, on);
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
  }
  bool active_;
  bool previous_;
};

}  // namespace harvest
