// Writes one checkpoint file (a whole checkpoint, or one rank's part) durably and atomically.
#pragma once

#include <filesystem>
#include <string>

#include "checkpoint/snapshot.hpp"

namespace harvest::checkpoint {

enum class Compression { None, Gzip };

// "none" | "gzip" (the [checkpoint] compression key); throws Config naming the key otherwise.
Compression parse_compression(const std::string& text);

struct WriteOptions {
  Compression compression = Compression::None;
  int gzip_level = 1;   // the fastest level: checkpoints are written far more often than read
  bool durable = true;  // fsync the file and its folder; only tests measuring raw speed turn it off
};

// Writes <path>.tmp, fsyncs it, renames it to `path` and fsyncs the folder: after a crash `path`
// is either absent, the previous file, or this complete file. Throws Runtime naming the file and
// the dataset on failure (the .tmp file is removed). Fills in harvest_version and created_utc
// when the snapshot leaves them empty.
void write_checkpoint_file(const Snapshot& snapshot, const std::filesystem::path& path,
                           const WriteOptions& options = {});

// Current UTC time, ISO 8601 ("2026-11-28T02:30:00Z").
std::string utc_now_iso8601();

}  // namespace harvest::checkpoint
