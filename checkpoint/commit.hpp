// The commit protocol (docs/checkpoint-format.md). A checkpoint of step S with W parts lives in
//   <dir>/step-<S, 12 digits>/part-<rank, 5 digits>-of-<W, 5 digits>.h5
// Each rank writes only its own part (durably, via <part>.tmp + rename). The committer (the
// coordinator, or the single worker when W == 1) checks that every part is there and then
// rewrites <dir>/latest atomically: that JSON manifest is the only record of which checkpoints
// are committed, newest first. A step folder not listed there is an unfinished save.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "checkpoint/snapshot.hpp"
#include "checkpoint/writer.hpp"

namespace harvest::checkpoint {

std::string checkpoint_name(int64_t step);  // "step-000000001000"
std::filesystem::path checkpoint_folder(const std::filesystem::path& dir, int64_t step);
std::filesystem::path part_path(const std::filesystem::path& dir, int64_t step, int64_t rank,
                                int64_t world_size);

struct PartEntry {
  std::string file;    // relative to the checkpoint folder
  uint64_t bytes = 0;  // size when committed: a shorter file is truncated
};

struct CommittedCheckpoint {
  std::string name;
  int64_t step = 0;
  int64_t world_size = 1;
  std::string committed_utc;
  std::vector<PartEntry> parts;  // by rank
};

// Contents of <dir>/latest. committed.front() is the latest committed checkpoint.
struct Manifest {
  std::vector<CommittedCheckpoint> committed;
};

// nullopt when <dir>/latest does not exist; throws Runtime naming the file when it is malformed.
std::optional<Manifest> read_manifest(const std::filesystem::path& dir);
// Replaces <dir>/latest atomically (write .tmp, fsync, rename, fsync dir).
void write_manifest(const std::filesystem::path& dir, const Manifest& manifest);

// Writes this rank's part of the checkpoint for snapshot.meta.step (rank and world size from
// snapshot.meta); returns its path once it is durable.
std::filesystem::path write_part(const Snapshot& snapshot, const std::filesystem::path& dir,
                                 const WriteOptions& options = {});

// Marks step committed once all world_size parts are durable: throws Runtime naming the missing
// or mismatched parts otherwise (and commits nothing). Only one process may commit into a folder.
CommittedCheckpoint commit_checkpoint(const std::filesystem::path& dir, int64_t step,
                                      int64_t world_size);

enum class VerifyLevel {
  Sizes,  // part files exist with their committed sizes and open (metadata checksums)
  Full,   // and every dataset matches its checksum
};

struct ResolvedCheckpoint {
  CommittedCheckpoint checkpoint;
  std::vector<std::filesystem::path> parts;  // by rank
  // Newer committed checkpoints that failed verification, one line each ("step-...: reason").
  std::vector<std::string> skipped;
};

// The newest committed checkpoint that passes verification, falling back to older committed ones
// (each skip is logged as a warning and listed); nullopt when none is committed or none verifies.
std::optional<ResolvedCheckpoint> resolve_latest(const std::filesystem::path& dir,
                                                 VerifyLevel level = VerifyLevel::Full);

// Checks one committed checkpoint; returns the problem, or nullopt when it verifies.
std::optional<std::string> check_committed(const std::filesystem::path& dir,
                                           const CommittedCheckpoint& checkpoint,
                                           VerifyLevel level);

}  // namespace harvest::checkpoint
