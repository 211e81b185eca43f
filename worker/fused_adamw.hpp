// AdamW whose update is one pass over memory per parameter element.
//
// LibTorch's torch::optim::AdamW updates each parameter with seven separate tensor operations
// (decay, two moment updates, sqrt, divide, add eps, addcdiv), each a full read/write pass, one
// parameter at a time: ~0.35 s per step for S/16's 94M parameters on 2 cores, half of a whole
// training step at drop 0.9. FusedAdamW computes the same update with the same state
// (AdamWParamState: step, exp_avg, exp_avg_sq, keyed as LibTorch keys them, so checkpoints and
// `optimizer.state()` users see no difference):
//
//   p <- p * (1 - lr * wd);  m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
//   p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
//
// - CPU float32 contiguous parameters: one vectorised loop per element range, the ranges of all
//   parameters spread over the intra-op threads together (small tensors do not serialise).
//   Element-wise, so the result does not depend on the thread count (deterministic mode holds).
// - Anything else (CUDA, bf16/fp16 parameters, non-contiguous): the _foreach_ multi-tensor ops per
//   group, the same formula.
// - amsgrad: LibTorch's own AdamW::step().
// Results equal LibTorch's AdamW to float rounding (tests/worker/test_fused_adamw.cpp).
#pragma once

#include <torch/torch.h>

#include <vector>

namespace harvest {

class FusedAdamW : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;

  torch::Tensor step(LossClosure closure = nullptr) override;

 private:
  // The state of `p`, created (zero moments, step 0) on its first update as LibTorch does.
  torch::optim::AdamWParamState& state_for(const at::Tensor& p);
};

}  // namespace harvest
