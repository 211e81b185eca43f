// Every difference between LibTorch 1.13 (Debian) and 2.x (PyTorch wheels) that harvest touches.
#pragma once

#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <cmath>
#include <string>
#include <type_traits>
#include <utility>

#define HARVEST_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||          \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

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

inline bool cuda_autocast_enabled() {
#if HARVEST_TORCH_AT_LEAST(2, 4)
  return at::autocast::is_autocast_enabled(at::kCUDA);
#else
  return at::autocast::is_enabled();
#endif
}

// Scoped bf16 autocast on CUDA (no-op when `enabled` is false); restores the previous state and
// drops the cast cache on exit, as torch.autocast does.
class CudaAutocast {
 public:
  explicit CudaAutocast(bool enabled) : active_(enabled), previous_(cuda_autocast_enabled()) {
    if (active_) set_cuda_autocast(true);
  }
  ~CudaAutocast() {
    if (!active_) return;
    set_cuda_autocast(previous_);
    if (!previous_) at::autocast::clear_cache();
  }
  CudaAutocast(const CudaAutocast&) = delete;
  CudaAutocast& operator=(const CudaAutocast&) = delete;

 private:
  bool active_;
  bool previous_;
};

// softmax(q k^T / sqrt(d) + mask) v over [B, H, L, d] tensors; `mask` is additive and
// broadcastable to [B, H, Lq, Lk], or undefined. 2.x has a fused kernel (flash / memory-efficient
// on CUDA); 1.13 only has the public math path, which is what this spells out.
inline at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& mask) {
#if HARVEST_TORCH_AT_LEAST(2, 1)
  c10::optional<at::Tensor> m;
  if (mask.defined()) m = mask.to(q.scalar_type());
  return at::scaled_dot_product_attention(q, k, v, m);
#else
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  at::Tensor scores = at::matmul(q * scale, k.transpose(-2, -1));
  if (mask.defined()) scores = scores + mask;
  return at::matmul(at::softmax(scores, -1), v);
#endif
}

// The key an optimizer's state() map files a parameter under: 1.13 uses the decimal string of
// its TensorImpl address, 2.x the address itself.
using OptimizerStateKey =
    typename std::decay_t<decltype(std::declval<torch::optim::Optimizer&>().state())>::key_type;

template <typename Key = OptimizerStateKey>  // a template, so that only the branch taken compiles
Key optimizer_state_key(const at::Tensor& param) {
  if constexpr (std::is_same_v<Key, std::string>)
    return c10::guts::to_string(param.unsafeGetTensorImpl());
  else
    return param.unsafeGetTensorImpl();
}

}  // namespace harvest::compat
