// `harvest bench checkpoint`: checkpoint save/load throughput against a raw sequential write of
// the same bytes to the same folder, and how long an async save blocks training.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

namespace harvest::bench {

struct CheckpointBenchOptions {
  int64_t size_mb = 256;
  int64_t reps = 3;           // interleaved repetitions; medians are reported
  std::filesystem::path dir;  // where files go; empty: the system temp folder
  std::string compression = "none";
  // Also time plain h5py (bench/reference/checkpoint_h5py.py under the project's Python) writing the
  // same tensor mix to the same folder, interleaved with the raw write and the save.
  bool h5py = false;
  std::filesystem::path reference_script;  // empty: the source tree's copy
};

// Runs the benchmark, printing one human-readable line per repetition to stderr; returns the
// summary (medians) that the command prints as the last line.
nlohmann::json run_checkpoint_bench(const CheckpointBenchOptions& options);

}  // namespace harvest::bench
