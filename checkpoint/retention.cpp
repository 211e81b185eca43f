#include "checkpoint/retention.hpp"

#include <algorithm>
#include <set>

#include "checkpoint/commit.hpp"
#include "checkpoint/durable_file.hpp"
#include "core/error.hpp"

namespace harvest::checkpoint {

namespace fs = std::filesystem;

std::vector<int64_t> steps_to_delete(std::vector<int64_t> committed,
                                     const RetentionPolicy& policy) {
  std::sort(committed.begin(), committed.end());
  committed.erase(std::unique(committed.begin(), committed.end()), committed.end());
  const int64_t keep_last = std::max<int64_t>(policy.keep_last, 1);  // the latest is never deleted
  std::vector<int64_t> doomed;
  const auto n = static_cast<int64_t>(committed.size());
  for (int64_t i = 0; i < n - keep_last; ++i) {
    const int64_t step = committed[static_cast<std::size_t>(i)];
    if (policy.keep_every > 0 && step % policy.keep_every == 0) continue;
    doomed.push_back(step);
  }
  return doomed;
}

std::vector<std::string> apply_retention(const fs::path& dir, const RetentionPolicy& policy) {
  auto manifest = read_manifest(dir);
  if (!manifest || manifest->committed.empty()) return {};
  std::vector<int64_t> steps;
  for (const auto& c : manifest->committed) steps.push_back(c.step);
  const std::vector<int64_t> doomed = steps_to_delete(steps, policy);
  const std::set<int64_t> doomed_set(doomed.begin(), doomed.end());

  std::vector<std::string> removed;
  if (!doomed.empty()) {
    Manifest kept;
    for (auto& c : manifest->committed)
      if (!doomed_set.count(c.step)) kept.committed.push_back(std::move(c));
    write_manifest(dir, kept);  // uncommit first: only then may the files go
    manifest = std::move(kept);
  }
  std::set<std::string> listed;
  for (const auto& c : manifest->committed) listed.insert(c.name);
  const std::string latest = manifest->committed.front().name;

  // Every step folder that is not committed and older than the latest: the ones just uncommitted
  // and leftovers of interrupted saves. Newer ones may be saves still in progress on other ranks.
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory() || name.rfind("step-", 0) != 0 || name.size() != latest.size())
      continue;
    if (listed.count(name) || name >= latest) continue;
    std::error_code ec;
    fs::remove_all(entry.path(), ec);
    HARVEST_REQUIRE(!ec, Runtime, "cannot remove old checkpoint ", entry.path().string(), ": ",
                    ec.message());
    removed.push_back(name);
  }
  if (!removed.empty()) fsync_dir(dir);
  std::sort(removed.begin(), removed.end());
  return removed;
}

}  // namespace harvest::checkpoint
