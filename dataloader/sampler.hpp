// EpochSampler: which dataset index each rank reads next. Each epoch is a seeded permutation of
// [0, size) (a keyed Feistel bijection: O(1) memory for any dataset size); rank r of W reads
// permutation positions cursor + r, cursor + r + W, ... The state (epoch, cursor) is global:
// every position below the cursor has been handed out. Restoring it (under any world size)
// continues the epoch with each remaining position handed out exactly once.
#pragma once

#include <cstdint>
#include <optional>

namespace harvest::data {

struct SamplerState {
  uint64_t epoch = 0;
  uint64_t cursor = 0;  // permutation positions consumed by all ranks together
  bool operator==(const SamplerState& o) const { return epoch == o.epoch && cursor == o.cursor; }
};

// A seeded bijection of [0, size).
class EpochPermutation {
 public:
  EpochPermutation(uint64_t size, uint64_t seed, uint64_t epoch);
  uint64_t operator()(uint64_t position) const;
  uint64_t size() const { return size_; }

 private:
  uint64_t round(int r, uint64_t half) const;
  uint64_t size_;
  int half_bits_ = 1;
  uint64_t half_mask_ = 1;
  uint64_t keys_[6] = {};
};

class EpochSampler {
 public:
  // Ranks advance in lockstep (one sample each per round): state() is then the same on all.
  EpochSampler(uint64_t size, uint64_t seed, int world_size, int rank, SamplerState start = {});

  // The next dataset index for this rank, or nullopt at the end of the epoch.
  std::optional<uint64_t> next();
  // Moves to the start of the next epoch.
  void next_epoch();
  // The next index of this rank's endless stream: at the end of an epoch the next one begins.
  uint64_t next_wrapping();
  // Moves `n` samples along that stream without computing them (epochs roll over the same way).
  void skip(uint64_t n);

  // The global state after this rank's samples so far (equal on all ranks in lockstep).
  SamplerState state() const;
  // Dataset indices this rank reads in the rest of the epoch.
  uint64_t remaining() const;

 private:
  uint64_t size_, seed_;
  int world_, rank_;
  uint64_t epoch_;
  uint64_t base_;       // global cursor when this rank's walk started
  uint64_t taken_ = 0;  // samples this rank has taken since base_
  EpochPermutation perm_;
};

}  // namespace harvest::data
