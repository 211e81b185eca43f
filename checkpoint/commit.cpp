#include "checkpoint/commit.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "checkpoint/durable_file.hpp"
#include "checkpoint/reader.hpp"
#include "core/json.hpp"
#include "core/error.hpp"

namespace harvest::checkpoint {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {
constexpr const char* kManifestFile = "latest";
constexpr const char* kManifestFormat = "harvest-checkpoint-manifest";

std::string part_name(int64_t rank, int64_t world_size) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "part-%05lld-of-%05lld.h5", static_cast<long long>(rank),
                static_cast<long long>(world_size));
  return buf;
}

// Creates the folder (and its parents) and makes the new entries durable.
void create_folder_durably(const fs::path& folder) {
  if (fs::is_directory(folder)) return;
  create_folder_durably(folder.parent_path());
  std::error_code ec;
  fs::create_directory(folder, ec);
  HARVEST_REQUIRE(!ec || fs::is_directory(folder), Runtime, "cannot create checkpoint folder ",
                  folder.string(), ": ", ec.message());
  fsync_dir(folder.parent_path());
}
}  // namespace

std::string checkpoint_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%012lld", static_cast<long long>(step));
  return buf;
}

fs::path checkpoint_folder(const fs::path& dir, int64_t step) {
  return dir / checkpoint_name(step);
}

fs::path part_path(const fs::path& dir, int64_t step, int64_t rank, int64_t world_size) {
  return checkpoint_folder(dir, step) / part_name(rank, world_size);
}

std::optional<Manifest> read_manifest(const fs::path& dir) {
  const fs::path file = dir / kManifestFile;
  const auto text = read_small_file(file);
  if (!text) return std::nullopt;
  try {
    const json j = parse_json_or_discarded(*text);
    HARVEST_REQUIRE(j.is_object(), Runtime, file.string(), ": malformed checkpoint manifest (not a JSON object)");
    HARVEST_REQUIRE(j.at("format").get<std::string>() == kManifestFormat, Runtime, file.string(),
                    ": not a harvest checkpoint manifest");
    const int64_t version = j.at("format_version").get<int64_t>();
    HARVEST_REQUIRE(version >= 1 && version <= kFormatVersion, Runtime, file.string(),
                    ": manifest format version ", version, " is not supported");
    Manifest m;
    for (const json& c : j.at("committed")) {
      CommittedCheckpoint cp;
      cp.name = c.at("name").get<std::string>();
      cp.step = c.at("step").get<int64_t>();
      cp.world_size = c.at("world_size").get<int64_t>();
      cp.committed_utc = c.at("committed_utc").get<std::string>();
      for (const json& p : c.at("parts"))
        cp.parts.push_back({p.at("file").get<std::string>(), p.at("bytes").get<uint64_t>()});
      // The manifest may name only its own checkpoints' parts, by the names harvest gives them:
      // a hand-edited or crafted one could otherwise make readers open any file (/etc/..., ../x).
      HARVEST_REQUIRE(cp.step >= 0 && cp.name == checkpoint_name(cp.step), Runtime, file.string(),
                      ": committed checkpoint '", cp.name.substr(0, 80), "' of step ", cp.step, " is not named ",
                      cp.step >= 0 ? checkpoint_name(cp.step) : std::string("step-<N>"),
                      " (a manifest names only the folders beside it)");
      HARVEST_REQUIRE(cp.world_size >= 1 && cp.world_size <= 100000 &&
                          static_cast<int64_t>(cp.parts.size()) == cp.world_size,
                      Runtime, file.string(), ": committed checkpoint ", cp.name, " lists ", cp.parts.size(),
                      " parts for world size ", cp.world_size);
      for (size_t i = 0; i < cp.parts.size(); ++i)
        HARVEST_REQUIRE(cp.parts[i].file == part_name(static_cast<int64_t>(i), cp.world_size), Runtime,
                        file.string(), ": committed checkpoint ", cp.name, ": part ", i, " is '",
                        cp.parts[i].file.substr(0, 80), "', expected ",
                        part_name(static_cast<int64_t>(i), cp.world_size),
                        " (a manifest names only the parts inside its checkpoint folders)");
      m.committed.push_back(std::move(cp));
    }
    return m;
  } catch (const json::exception& e) {
    fail(ErrorKind::Runtime, file.string(), ": malformed checkpoint manifest: ", e.what());
  }
}

void write_manifest(const fs::path& dir, const Manifest& manifest) {
  json committed = json::array();
  for (const auto& c : manifest.committed) {
    json parts = json::array();
    for (const auto& p : c.parts) parts.push_back({{"file", p.file}, {"bytes", p.bytes}});
    committed.push_back({{"name", c.name},
                         {"step", c.step},
                         {"world_size", c.world_size},
                         {"committed_utc", c.committed_utc},
                         {"parts", parts}});
  }
  const json j = {{"format", kManifestFormat},
                  {"format_version", kFormatVersion},
                  {"latest", manifest.committed.empty() ? json(nullptr)
                                                        : json(manifest.committed.front().name)},
                  {"committed", committed}};
  write_file_atomically(dir / kManifestFile, j.dump(2) + "\n");
}

fs::path write_part(const Snapshot& snapshot, const fs::path& dir, const WriteOptions& options) {
  const auto& m = snapshot.meta;
  HARVEST_REQUIRE(m.world_size >= 1 && m.rank >= 0 && m.rank < m.world_size, Usage,
                  "checkpoint part: rank ", m.rank, " is outside world size ", m.world_size);
  HARVEST_REQUIRE(m.step >= 0, Usage, "checkpoint part: negative step ", m.step);
  create_folder_durably(checkpoint_folder(dir, m.step));
  const fs::path path = part_path(dir, m.step, m.rank, m.world_size);
  write_checkpoint_file(snapshot, path, options);
  return path;
}

CommittedCheckpoint commit_checkpoint(const fs::path& dir, int64_t step, int64_t world_size) {
  CommittedCheckpoint cp;
  cp.name = checkpoint_name(step);
  cp.step = step;
  cp.world_size = world_size;
  std::vector<std::string> problems;
  for (int64_t rank = 0; rank < world_size; ++rank) {
    const fs::path part = part_path(dir, step, rank, world_size);
    if (!fs::exists(part)) {
      problems.push_back(cat(part.string(), " is missing"));
      continue;
    }
    try {
      // Opening reads only metadata (checksummed by HDF5): cheap, and it proves the part is whole.
      const CheckpointReader reader(part);
      if (reader.meta().step != step || reader.meta().rank != rank ||
          reader.meta().world_size != world_size)
        problems.push_back(cat(part.string(), " holds step ", reader.meta().step, " rank ",
                               reader.meta().rank, " of ", reader.meta().world_size));
    } catch (const Error& e) {
      problems.push_back(e.what());
    }
    cp.parts.push_back({part.filename().string(), fs::exists(part) ? fs::file_size(part) : 0});
  }
  if (!problems.empty()) {
    std::string text = cat("cannot commit checkpoint ", cp.name, " in ", dir.string(), ": ");
    for (std::size_t i = 0; i < problems.size(); ++i) text += (i ? "; " : "") + problems[i];
    fail(ErrorKind::Runtime, text);
  }
  cp.committed_utc = utc_now_iso8601();
  Manifest manifest = read_manifest(dir).value_or(Manifest{});
  std::vector<CommittedCheckpoint> older;
  for (auto& c : manifest.committed)
    if (c.step != step) older.push_back(std::move(c));
  manifest.committed.clear();
  manifest.committed.push_back(cp);
  for (auto& c : older) manifest.committed.push_back(std::move(c));
  // Newest first by step, whatever order commits arrived in.
  std::stable_sort(manifest.committed.begin(), manifest.committed.end(),
                   [](const auto& a, const auto& b) { return a.step > b.step; });
  write_manifest(dir, manifest);
  return cp;
}

std::optional<std::string> check_committed(const fs::path& dir,
                                           const CommittedCheckpoint& checkpoint,
                                           VerifyLevel level) {
  const fs::path folder = dir / checkpoint.name;
  if (static_cast<int64_t>(checkpoint.parts.size()) != checkpoint.world_size)
    return cat(checkpoint.name, ": manifest lists ", checkpoint.parts.size(),
               " parts for world size ", checkpoint.world_size);
  for (const PartEntry& part : checkpoint.parts) {
    const fs::path path = folder / part.file;
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    if (ec) return cat(path.string(), ": ", ec.message());
    if (size != part.bytes) {
      std::string detail;
      try {
        const CheckpointReader reader(path);
      } catch (const Error& e) {
        detail = cat(" (", e.what(), ")");  // for a truncated file: which dataset was cut
      }
      return cat(path.string(), ": ", size, " bytes on disk, ", part.bytes,
                 " when committed: truncated or replaced", detail);
    }
    try {
      const CheckpointReader reader(path);
      if (level == VerifyLevel::Full) {
        const auto problems = reader.verify();
        if (!problems.empty()) return problems.front();
      }
    } catch (const Error& e) {
      return std::string(e.what());
    }
  }
  return std::nullopt;
}

std::optional<ResolvedCheckpoint> resolve_latest(const fs::path& dir, VerifyLevel level) {
  const auto manifest = read_manifest(dir);
  if (!manifest) return std::nullopt;
  std::vector<std::string> skipped;
  for (const CommittedCheckpoint& cp : manifest->committed) {
    if (const auto problem = check_committed(dir, cp, level)) {
      spdlog::warn("checkpoint {} in {} fails verification, falling back to the previous one: {}",
                   cp.name, dir.string(), *problem);
      skipped.push_back(cat(cp.name, ": ", *problem));
      continue;
    }
    ResolvedCheckpoint resolved{cp, {}, skipped};
    for (const PartEntry& p : cp.parts) resolved.parts.push_back(dir / cp.name / p.file);
    return resolved;
  }
  return std::nullopt;
}

}  // namespace harvest::checkpoint
