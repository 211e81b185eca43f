// PatchDropper: the recipe's random video-patch dropping. Each sample keeps its own uniformly
// random subset of round((1 - drop) x N) patch tokens (not tubes); the encoder gathers them, so
// dropped tokens cost nothing downstream. CLS is not a patch: the encoder always keeps it.
// The generator is explicit and its state can be saved and restored (exact resume).
#pragma once

#include <torch/torch.h>

namespace harvest {

class PatchDropper {
 public:
  PatchDropper(double drop_ratio, uint64_t seed);

  // [batch, kept] int64 patch indices in [0, patches), ascending per row, on `device`.
  at::Tensor draw(int64_t batch, int64_t patches, const at::Device& device);

  double drop_ratio() const { return drop_ratio_; }
  // Changes the ratio for later draws (the generator state is kept); throws Config outside [0, 1).
  void set_drop_ratio(double drop_ratio);
  void reseed(uint64_t seed);
  at::Tensor state() const;  // uint8 generator state (checkpointable)
  void set_state(const at::Tensor& state);

 private:
  double drop_ratio_;
  at::Generator gen_;
};

}  // namespace harvest
