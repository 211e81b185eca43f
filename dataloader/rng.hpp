// SampleRng: a small, portable generator (SplitMix64) so that a (seed, epoch, index) triple picks
// the same frames and crops on every platform and standard library (std:: distributions don't).
#pragma once

#include <cstdint>

namespace harvest::data {

class SampleRng {
 public:
  explicit SampleRng(uint64_t seed) : state_(seed) {}
  // Independent stream for sample `index` of `epoch` under `seed`.
  static SampleRng for_sample(uint64_t seed, uint64_t epoch, uint64_t index) {
    SampleRng mix(seed ^ 0x5851f42d4c957f2dULL);
    const uint64_t a = mix.next() ^ epoch;
    SampleRng mix2(a);
    return SampleRng(mix2.next() ^ (index * 0x9e3779b97f4a7c15ULL));
  }
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [0, n) (n > 0); the modulo bias is below 2^-40 for the sizes used here.
  uint64_t below(uint64_t n) { return next() % n; }

 private:
  uint64_t state_;
};

}  // namespace harvest::data
