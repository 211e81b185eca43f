// Sampler: seeded epoch permutations, sharding by rank, exact resume and resharding.
#include <algorithm>
#include <catch2/catch.hpp>
#include <set>

#include "dataloader/sampler.hpp"

using namespace harvest::data;

namespace {

// Runs `world` ranks in lockstep rounds from `start` for up to `rounds` rounds; returns indices.
std::vector<uint64_t> run_lockstep(uint64_t size, uint64_t seed, int world, SamplerState start,
                                   uint64_t rounds, SamplerState* end_state = nullptr) {
  std::vector<EpochSampler> ranks;
  for (int r = 0; r < world; ++r) ranks.emplace_back(size, seed, world, r, start);
  std::vector<uint64_t> seen;
  for (uint64_t k = 0; k < rounds; ++k)
    for (auto& s : ranks)
      if (auto i = s.next()) seen.push_back(*i);
  if (end_state) *end_state = ranks[0].state();
  return seen;
}

}  // namespace

TEST_CASE("an epoch is a seeded permutation", "[dataloader][sampler]") {
  for (uint64_t size : {1u, 2u, 3u, 7u, 100u, 1000u, 4097u}) {
    EpochPermutation p(size, 5, 0);
    std::set<uint64_t> values;
    for (uint64_t i = 0; i < size; ++i) values.insert(p(i));
    CHECK(values.size() == size);
    CHECK(*values.rbegin() == size - 1);
  }
  EpochPermutation a(1000, 5, 0), b(1000, 5, 0), c(1000, 5, 1), d(1000, 6, 0);
  int same_epoch = 0, same_seed = 0;
  for (uint64_t i = 0; i < 1000; ++i) {
    REQUIRE(a(i) == b(i));
    same_epoch += a(i) == c(i);
    same_seed += a(i) == d(i);
  }
  CHECK(same_epoch < 20);  // a fresh order each epoch and each seed
  CHECK(same_seed < 20);
}

TEST_CASE("ranks split an epoch into disjoint shards covering it", "[dataloader][sampler]") {
  const auto seen = run_lockstep(103, 9, 4, {}, 1000);
  std::set<uint64_t> unique(seen.begin(), seen.end());
  CHECK(seen.size() == 103);
  CHECK(unique.size() == 103);
  EpochSampler r3(103, 9, 4, 3);
  CHECK(r3.remaining() == 25);  // positions 3, 7, ..., 99
  EpochSampler r0(103, 9, 4, 0);
  CHECK(r0.remaining() == 26);
}

TEST_CASE("resuming from a saved state continues exactly", "[dataloader][sampler]") {
  const auto whole = run_lockstep(50, 3, 2, {}, 1000);
  SamplerState mid;
  const auto first = run_lockstep(50, 3, 2, {}, 7, &mid);
  CHECK(mid == SamplerState{0, 14});
  const auto rest = run_lockstep(50, 3, 2, mid, 1000);
  std::vector<uint64_t> joined = first;
  joined.insert(joined.end(), rest.begin(), rest.end());
  CHECK(joined == whole);
}

TEST_CASE("resharding to another world size covers the rest of the epoch once",
          "[dataloader][sampler]") {
  for (int new_world : {1, 3, 5, 8}) {
    SamplerState mid;
    const auto first = run_lockstep(97, 11, 4, {}, 6, &mid);  // 24 consumed by 4 ranks
    const auto rest = run_lockstep(97, 11, new_world, mid, 1000);
    std::multiset<uint64_t> all(first.begin(), first.end());
    all.insert(rest.begin(), rest.end());
    INFO("new world size " << new_world);
    CHECK(all.size() == 97);
    CHECK(std::set<uint64_t>(all.begin(), all.end()).size() == 97);
  }
}

TEST_CASE("the next epoch starts a new permutation; bad states are refused",
          "[dataloader][sampler]") {
  EpochSampler s(10, 1, 1, 0);
  std::vector<uint64_t> e0, e1;
  while (auto i = s.next()) e0.push_back(*i);
  CHECK(s.state() == SamplerState{0, 10});
  s.next_epoch();
  while (auto i = s.next()) e1.push_back(*i);
  CHECK(e0 != e1);
  std::sort(e1.begin(), e1.end());
  CHECK(e1 == std::vector<uint64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK_THROWS(EpochSampler(10, 1, 2, 2));
  CHECK_THROWS(EpochSampler(10, 1, 1, 0, {0, 11}));
  CHECK_THROWS(EpochSampler(0, 1, 1, 0));
}
