#include "model/patch_dropper.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include "core/error.hpp"
#include "model/options.hpp"

namespace harvest {

PatchDropper::PatchDropper(double drop_ratio, uint64_t seed)
    : drop_ratio_(drop_ratio), gen_(at::make_generator<at::CPUGeneratorImpl>(seed)) {
  set_drop_ratio(drop_ratio);
}

void PatchDropper::set_drop_ratio(double drop_ratio) {
  HARVEST_REQUIRE(drop_ratio >= 0 && drop_ratio < 1, Config, "model.drop_ratio: must be in [0, 1) (got ",
                  drop_ratio, ")");
  drop_ratio_ = drop_ratio;
}

at::Tensor PatchDropper::draw(int64_t batch, int64_t patches, const at::Device& device) {
  HARVEST_REQUIRE(batch > 0 && patches > 0, Usage, "PatchDropper::draw: batch ", batch, " and patches ",
                  patches, " must be positive");
  const int64_t kept = kept_patch_count(patches, drop_ratio_);
  // A uniformly random k-subset per row: the k largest of i.i.d. uniform scores. Drawn on the
  // CPU generator so the sequence does not depend on the device.
  // (The sampling kernel takes the generator's lock itself.)
  const at::Tensor scores = torch::rand({batch, patches}, gen_, torch::kFloat);
  const at::Tensor chosen = std::get<1>(scores.topk(kept, /*dim=*/1));
  return std::get<0>(chosen.sort(/*dim=*/1)).to(device);
}

void PatchDropper::reseed(uint64_t seed) {
  std::lock_guard<std::mutex> lock(gen_.mutex());
  gen_.set_current_seed(seed);
}

at::Tensor PatchDropper::state() const { return gen_.get_state(); }

void PatchDropper::set_state(const at::Tensor& state) {
  std::lock_guard<std::mutex> lock(gen_.mutex());
  gen_.set_state(state);
}

}  // namespace harvest
