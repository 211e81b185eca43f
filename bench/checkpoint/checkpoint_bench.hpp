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
};

// Runs the benchmark, printing one human-readable line per repetition to stderr; returns the
// summary (medians) that the command prints as the last line.
nlohmann::json run_checkpoint_bench(const CheckpointBenchOptions& options);

}  // namespace harvest::bench
