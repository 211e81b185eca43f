// Shared by the checkpoint tests: scratch folders and deterministic snapshots.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "checkpoint/snapshot.hpp"

namespace harvest::checkpoint::test {

// A fresh folder under the system temp dir, removed at scope exit.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& tag) {
    path_ = std::filesystem::temp_directory_path() /
            ("harvest-ckpt-" + tag + "-" + std::to_string(::getpid()) + "-" +
             std::to_string(std::random_device{}()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Fills bytes from a seed: every snapshot's content is a function of (step, rank), so a test can
// rebuild what a checkpoint must contain.
inline void fill_random(std::byte* data, std::size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const uint64_t v = rng();
    std::memcpy(data + i, &v, 8);
  }
  for (; i < n; ++i) data[i] = static_cast<std::byte>(rng());
}

// A small training-state-like snapshot: parameters, optimizer moments, RNG/sampler blobs.
inline Snapshot make_snapshot(int64_t step, int64_t rank = 0, int64_t world_size = 1,
                              int64_t scale = 1) {
  Snapshot s;
  s.meta.step = step;
  s.meta.epoch = step / 10;
  s.meta.rank = rank;
  s.meta.world_size = world_size;
  s.meta.torch_version = "2.11.0";
  s.meta.config_toml = "[train]\nsteps = " + std::to_string(step) + "\n";
  const uint64_t seed = static_cast<uint64_t>(step) * 1000003u + static_cast<uint64_t>(rank);
  fill_random(s.add("model/visual/conv1.weight", DType::F32, {8, 3, 4, 4 * scale}),
              8 * 3 * 4 * 4 * 4 * scale, seed);
  fill_random(s.add("model/visual/ln_post.bias", DType::BF16, {16}), 32, seed + 1);
  fill_random(s.add("model/text/token_embedding.weight", DType::F16, {32, 8 * scale}),
              32 * 8 * 2 * scale, seed + 2);
  fill_random(
      s.add("optimizer/exp_avg/model.visual.conv1.weight", DType::F32, {8, 3, 4, 4 * scale}),
      8 * 3 * 4 * 4 * 4 * scale, seed + 3);
  int64_t opt_step = step;
  s.add_copy("optimizer/step", DType::I64, {}, &opt_step);
  s.add_blob("rng/cpu", "mt19937 state " + std::to_string(seed));
  s.add_blob("data/sampler", "{\"epoch\":" + std::to_string(step / 10) +
                                 ",\"position\":" + std::to_string(step) + "}");
  return s;
}

inline bool same_records(const Snapshot& a, const Snapshot& b) {
  if (a.records().size() != b.records().size()) return false;
  for (const Record& r : a.records()) {
    const Record* o = b.find(r.path);
    if (!o || o->dtype != r.dtype || o->shape != r.shape || o->bytes.size() != r.bytes.size())
      return false;
    if (r.bytes.size() && std::memcmp(o->bytes.data(), r.bytes.data(), r.bytes.size()) != 0)
      return false;
  }
  return true;
}

// Overwrites one byte of a file in place (flips all its bits).
inline void flip_byte(const std::filesystem::path& file, uint64_t offset) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(~c);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

}  // namespace harvest::checkpoint::test
