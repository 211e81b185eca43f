// Logging set-up: every line carries the process role and rank, e.g.
//   2026-11-28 01:50:00.123 [worker:1] info  step 10 loss 4.21
// Call init_logging() once in main(); components then log through spdlog's free functions.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace harvest {

struct LogIdentity {
  std::string role = "harvest";  // coordinator, worker, loader, eval, cli ...
  int rank = -1;                 // -1: no rank (printed as "-")
};

// Parses "trace|debug|info|warn|error|off"; throws Usage naming the flag on anything else.
spdlog::level::level_enum parse_log_level(const std::string& text, const std::string& flag);

// Installs the process-wide logger (stderr) with role/rank in every line.
void init_logging(const LogIdentity& who, spdlog::level::level_enum level);

// Re-labels the logger when the rank becomes known (after registration) without losing the level.
void set_log_rank(int rank);

}  // namespace harvest
