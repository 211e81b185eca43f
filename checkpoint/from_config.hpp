// The [checkpoint] config section turned into saver options and a resume decision, so the worker
// and the coordinator read the config the same way.
#pragma once

#include <filesystem>
#include <optional>

#include "checkpoint/commit.hpp"
#include "checkpoint/saver.hpp"
#include "core/config/config.hpp"

namespace harvest::checkpoint {

// checkpoint.dir, or <logging.run_dir>/checkpoints when empty.
std::filesystem::path checkpoint_dir(const Config& config);

// async, compression and retention from the config (callbacks left for the caller).
SaverOptions saver_options(const Config& config);

// checkpoint.resume: "never" -> nullopt; "auto" -> the latest committed checkpoint in
// checkpoint_dir() that verifies, or nullopt when none is committed; a path -> that checkpoint
// folder's latest committed checkpoint (the folder holding `latest`), or an error naming the path
// when it holds none that verifies (an explicit resume must not silently start from scratch).
std::optional<ResolvedCheckpoint> resolve_resume(const Config& config);

}  // namespace harvest::checkpoint
