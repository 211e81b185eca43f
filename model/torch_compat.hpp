// Every difference between LibTorch 1.13 (Debian) and 2.x (PyTorch wheels) that harvest touches.
#pragma once

#include <torch/torch.h>
#include <torch/version.h>

#define HARVEST_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace harvest::compat {

// bf16 autocast on CUDA: 2.x takes the device type, 1.13 has a CUDA-only switch.
inline void set_cuda_autocast(bool enabled) {
#if HARVEST_TORCH_AT_LEAST(2, 4)
  at::autocast::set_autocast_enabled(at::kCUDA, enabled);
  at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
#else
  at::autocast::set_enabled(enabled);
  at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
#endif
}

}  // namespace harvest::compat
