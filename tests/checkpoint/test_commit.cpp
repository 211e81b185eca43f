// The commit protocol: parts, the latest manifest, fall-back on corruption, retention.
#include <catch2/catch.hpp>
#include <filesystem>
#include <sstream>

#include "checkpoint/commit.hpp"
#include "checkpoint/reader.hpp"
#include "checkpoint/retention.hpp"
#include "core/error.hpp"
#include "tests/checkpoint/helpers.hpp"

using namespace harvest::checkpoint;
using harvest::Error;
using harvest::checkpoint::test::ScratchDir;
namespace fs = std::filesystem;

namespace {
void save_and_commit(const fs::path& dir, int64_t step, int64_t world = 1) {
  for (int64_t rank = 0; rank < world; ++rank)
    write_part(test::make_snapshot(step, rank, world), dir);
  commit_checkpoint(dir, step, world);
}

std::vector<int64_t> committed_steps(const fs::path& dir) {
  std::vector<int64_t> steps;
  const Manifest manifest = read_manifest(dir).value_or(Manifest{});
  for (const auto& c : manifest.committed) steps.push_back(c.step);
  return steps;
}
}  // namespace

TEST_CASE("part paths follow the documented names", "[checkpoint]") {
  CHECK(checkpoint_name(1000) == "step-000000001000");
  CHECK(part_path("/ck", 1000, 2, 8) == fs::path("/ck/step-000000001000/part-00002-of-00008.h5"));
}

TEST_CASE("a checkpoint is committed only when every part is durable", "[checkpoint]") {
  ScratchDir dir("commit");
  CHECK_FALSE(resolve_latest(dir.path()).has_value());
  write_part(test::make_snapshot(10, 0, 3), dir.path());
  write_part(test::make_snapshot(10, 2, 3), dir.path());
  CHECK_THROWS_WITH(commit_checkpoint(dir.path(), 10, 3),
                    Catch::Contains("part-00001-of-00003.h5 is missing"));
  CHECK_FALSE(read_manifest(dir.path()).has_value());

  write_part(test::make_snapshot(10, 1, 3), dir.path());
  const auto committed = commit_checkpoint(dir.path(), 10, 3);
  CHECK(committed.parts.size() == 3);
  const auto resolved = resolve_latest(dir.path());
  REQUIRE(resolved.has_value());
  CHECK(resolved->checkpoint.step == 10);
  CHECK(resolved->skipped.empty());
  for (int64_t rank = 0; rank < 3; ++rank) {
    const CheckpointReader reader(resolved->parts[static_cast<std::size_t>(rank)]);
    CHECK(reader.meta().rank == rank);
    CHECK(test::same_records(reader.read_all(), test::make_snapshot(10, rank, 3)));
  }
}

TEST_CASE("commit rejects a part written for another step or world size", "[checkpoint]") {
  ScratchDir dir("mismatch");
  write_part(test::make_snapshot(20, 0, 1), dir.path());
  fs::rename(part_path(dir.path(), 20, 0, 1),
             dir.path() / "step-000000000020" / "part-00000-of-00002.h5");
  write_part(test::make_snapshot(20, 1, 2), dir.path());
  CHECK_THROWS_WITH(commit_checkpoint(dir.path(), 20, 2),
                    Catch::Contains("holds step 20 rank 0 of 1"));
}

TEST_CASE("resume falls back to the previous checkpoint when the latest is corrupt",
          "[checkpoint]") {
  ScratchDir dir("fallback");
  save_and_commit(dir.path(), 100);
  save_and_commit(dir.path(), 200);
  const fs::path newest = part_path(dir.path(), 200, 0, 1);

  SECTION("flipped byte: the skip names the dataset") {
    uint64_t offset = 0;
    {
      const CheckpointReader reader(newest);
      offset = *reader.find("model/visual/conv1.weight")->file_offset + 5;
    }
    test::flip_byte(newest, offset);
    CHECK(resolve_latest(dir.path(), VerifyLevel::Sizes)->checkpoint.step ==
          200);  // sizes alone miss it
    const auto resolved = resolve_latest(dir.path(), VerifyLevel::Full);
    REQUIRE(resolved.has_value());
    CHECK(resolved->checkpoint.step == 100);
    REQUIRE(resolved->skipped.size() == 1);
    CHECK_THAT(resolved->skipped[0], Catch::Contains("step-000000000200"));
    CHECK_THAT(resolved->skipped[0],
               Catch::Contains("dataset 'model/visual/conv1.weight' is corrupt"));
  }
  SECTION("truncated part") {
    fs::resize_file(newest, fs::file_size(newest) - 1000);
    const auto resolved = resolve_latest(dir.path(), VerifyLevel::Sizes);
    REQUIRE(resolved.has_value());
    CHECK(resolved->checkpoint.step == 100);
    CHECK_THAT(resolved->skipped.at(0), Catch::Contains("truncated"));
    CHECK_THAT(resolved->skipped.at(0), Catch::Contains("' is cut (its data spans bytes"));
  }
  SECTION("missing part") {
    fs::remove(newest);
    CHECK(resolve_latest(dir.path())->checkpoint.step == 100);
  }
  SECTION("every checkpoint corrupt: nothing to resume from") {
    fs::remove(newest);
    fs::remove(part_path(dir.path(), 100, 0, 1));
    CHECK_FALSE(resolve_latest(dir.path()).has_value());
  }
}

TEST_CASE("a malformed manifest is an error naming it", "[checkpoint]") {
  ScratchDir dir("manifest");
  std::ofstream(dir.path() / "latest") << "{\"format\": \"harvest-checkpoint-manifest\"";
  CHECK_THROWS_WITH(read_manifest(dir.path()),
                    Catch::Contains("latest: malformed checkpoint manifest"));
}

TEST_CASE("a manifest naming files outside its checkpoint folders is refused", "[checkpoint]") {
  ScratchDir dir("confined");
  write_part(test::make_snapshot(10, 0, 1), dir.path());
  commit_checkpoint(dir.path(), 10, 1);
  const fs::path latest = dir.path() / "latest";
  std::stringstream text;
  text << std::ifstream(latest).rdbuf();
  const std::string good = text.str();
  const std::string part = part_path(dir.path(), 10, 0, 1).filename().string();
  REQUIRE(good.find(part) != std::string::npos);
  for (const std::string& evil : std::vector<std::string>{"../../../../../../etc/hostname", "/etc/hostname", "x/../" + part}) {
    INFO(evil);
    std::string bad = good;
    bad.replace(bad.find(part), part.size(), evil);
    std::ofstream(latest, std::ios::trunc) << bad;
    CHECK_THROWS_WITH(read_manifest(dir.path()), Catch::Contains("expected " + part));
  }
  std::string renamed = good;
  renamed.replace(renamed.find(checkpoint_name(10)), checkpoint_name(10).size(), "..");
  std::ofstream(latest, std::ios::trunc) << renamed;
  CHECK_THROWS_WITH(read_manifest(dir.path()), Catch::Contains("is not named " + checkpoint_name(10)));
}

TEST_CASE("retention keeps the last K plus every Nth step", "[checkpoint]") {
  SECTION("the policy alone") {
    const std::vector<int64_t> steps = {100, 200, 300, 400, 500, 600, 700};
    CHECK(steps_to_delete(steps, {3, 0}) == std::vector<int64_t>{100, 200, 300, 400});
    CHECK(steps_to_delete(steps, {2, 200}) == std::vector<int64_t>{100, 300, 500});
    CHECK(steps_to_delete(steps, {0, 0}) ==
          std::vector<int64_t>{100, 200, 300, 400, 500, 600});  // latest kept
    CHECK(steps_to_delete({700, 100, 400}, {1, 0}) == std::vector<int64_t>{100, 400});
    CHECK(steps_to_delete(steps, {10, 0}).empty());
  }
  SECTION("on disk, with leftovers of interrupted saves") {
    ScratchDir dir("retention");
    for (int64_t step : {100, 200, 300, 400, 500}) save_and_commit(dir.path(), step);
    write_part(test::make_snapshot(250), dir.path());  // written, never committed: a crash
    write_part(test::make_snapshot(600), dir.path());  // newer than latest: maybe still in progress
    const auto removed = apply_retention(dir.path(), {2, 200});
    CHECK(removed ==
          std::vector<std::string>{"step-000000000100", "step-000000000250", "step-000000000300"});
    CHECK(committed_steps(dir.path()) == std::vector<int64_t>{500, 400, 200});
    CHECK(fs::exists(checkpoint_folder(dir.path(), 200)));
    CHECK_FALSE(fs::exists(checkpoint_folder(dir.path(), 300)));
    CHECK(fs::exists(checkpoint_folder(dir.path(), 600)));
    CHECK(resolve_latest(dir.path())->checkpoint.step == 500);
  }
}
