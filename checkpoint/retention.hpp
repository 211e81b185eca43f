// Retention: keep the newest K committed checkpoints plus every Nth step; never the latest.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace harvest::checkpoint {

struct RetentionPolicy {
  int64_t keep_last = 3;   // newest K committed checkpoints ([checkpoint] keep_last)
  int64_t keep_every = 0;  // also steps that are multiples of N; 0: none ([checkpoint] keep_every)
};

// Which of the committed steps the policy deletes (ascending). The newest step is always kept,
// whatever the policy says.
std::vector<int64_t> steps_to_delete(std::vector<int64_t> committed, const RetentionPolicy& policy);

// Applies the policy in <dir>: first rewrites the manifest without the deleted checkpoints (so a
// crash never leaves a listed checkpoint half-deleted), then removes their folders, and removes
// step folders older than the latest committed one that were never committed (saves cut short by
// a crash). Returns the removed folder names.
std::vector<std::string> apply_retention(const std::filesystem::path& dir,
                                         const RetentionPolicy& policy);

}  // namespace harvest::checkpoint
