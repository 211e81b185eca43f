#include "dataloader/sampler.hpp"

#include "core/error.hpp"
#include "dataloader/rng.hpp"

namespace harvest::data {

EpochPermutation::EpochPermutation(uint64_t size, uint64_t seed, uint64_t epoch) : size_(size) {
  HARVEST_REQUIRE(size > 0, Usage, "sampler: the dataset is empty");
  int bits = 2;
  while (bits < 64 && (uint64_t{1} << bits) < size) ++bits;
  if (bits % 2) ++bits;  // balanced Feistel halves
  half_bits_ = bits / 2;
  half_mask_ = (uint64_t{1} << half_bits_) - 1;
  SampleRng rng = SampleRng::for_sample(seed, epoch, 0xfe15);
  for (auto& k : keys_) k = rng.next();
}

uint64_t EpochPermutation::round(int r, uint64_t half) const {
  SampleRng mix(keys_[r] ^ half);
  return mix.next() & half_mask_;
}

uint64_t EpochPermutation::operator()(uint64_t position) const {
  HARVEST_ASSERT(position < size_, "permutation position ", position, " out of ", size_);
  // A bijection on [0, 2^bits); walking the cycle until the value lands in [0, size) keeps it a
  // bijection on [0, size) (cycle walking). The domain is < 4x size, so walks stay short.
  uint64_t x = position;
  do {
    uint64_t left = x >> half_bits_, right = x & half_mask_;
    for (int r = 0; r < 6; ++r) {
      const uint64_t next = left ^ round(r, right);
      left = right;
      right = next;
    }
    x = (left << half_bits_) | right;
  } while (x >= size_);
  return x;
}

EpochSampler::EpochSampler(uint64_t size, uint64_t seed, int world_size, int rank,
                           SamplerState start)
    : size_(size),
      seed_(seed),
      world_(world_size),
      rank_(rank),
      epoch_(start.epoch),
      base_(start.cursor),
      perm_(size, seed, start.epoch) {
  HARVEST_REQUIRE(world_size >= 1 && rank >= 0 && rank < world_size, Usage, "sampler: rank ", rank,
                  " outside world size ", world_size);
  HARVEST_REQUIRE(start.cursor <= size, Usage, "sampler: cursor ", start.cursor,
                  " past the epoch's ", size, " samples");
}

std::optional<uint64_t> EpochSampler::next() {
  const uint64_t position =
      base_ + taken_ * static_cast<uint64_t>(world_) + static_cast<uint64_t>(rank_);
  if (position >= size_) return std::nullopt;
  ++taken_;
  return perm_(position);
}

void EpochSampler::next_epoch() {
  ++epoch_;
  base_ = 0;
  taken_ = 0;
  perm_ = EpochPermutation(size_, seed_, epoch_);
}

uint64_t EpochSampler::next_wrapping() {
  auto index = next();
  if (!index) {
    next_epoch();
    index = next();
  }
  HARVEST_ASSERT(index.has_value(), "sampler gave no index in a fresh epoch (size ", size_, ", world ", world_, ")");
  return *index;
}

void EpochSampler::skip(uint64_t n) {
  while (n > 0) {
    const uint64_t left = remaining();
    if (left == 0) {
      next_epoch();
      HARVEST_ASSERT(remaining() > 0, "sampler: a fresh epoch holds no sample for rank ", rank_);
      continue;
    }
    const uint64_t step = n < left ? n : left;
    taken_ += step;
    n -= step;
  }
}

SamplerState EpochSampler::state() const {
  const uint64_t cursor = base_ + taken_ * static_cast<uint64_t>(world_);
  return {epoch_, cursor < size_ ? cursor : size_};
}

uint64_t EpochSampler::remaining() const {
  const uint64_t first =
      base_ + taken_ * static_cast<uint64_t>(world_) + static_cast<uint64_t>(rank_);
  return first >= size_ ? 0 : (size_ - first + world_ - 1) / static_cast<uint64_t>(world_);
}

}  // namespace harvest::data
