#include "checkpoint/from_config.hpp"

#include "core/error.hpp"

namespace harvest::checkpoint {

namespace fs = std::filesystem;

fs::path checkpoint_dir(const Config& config) {
  return config.checkpoint.dir.empty() ? fs::path(config.logging.run_dir) / "checkpoints"
                                       : fs::path(config.checkpoint.dir);
}

SaverOptions saver_options(const Config& config) {
  SaverOptions options;
  options.dir = checkpoint_dir(config);
  options.async = config.checkpoint.async;
  options.write.compression = parse_compression(config.checkpoint.compression);
  options.retention = {config.checkpoint.keep_last, config.checkpoint.keep_every};
  return options;
}

std::optional<ResolvedCheckpoint> resolve_resume(const Config& config) {
  const std::string& resume = config.checkpoint.resume;
  if (resume == "never") return std::nullopt;
  if (resume == "auto") return resolve_latest(checkpoint_dir(config), VerifyLevel::Full);
  const fs::path dir(resume);
  HARVEST_REQUIRE(fs::exists(dir / "latest"), Config, "checkpoint.resume: ", resume,
                  " is not a checkpoint folder (no 'latest' manifest in it)");
  auto resolved = resolve_latest(dir, VerifyLevel::Full);
  HARVEST_REQUIRE(resolved.has_value(), Runtime, "checkpoint.resume: no committed checkpoint in ",
                  resume, " passes verification");
  return resolved;
}

}  // namespace harvest::checkpoint
