// harvest ckpt inspect|verify: output and exit codes (0 intact, 1 corrupt/missing, 2 usage).
#include <catch2/catch.hpp>

#include "checkpoint/commit.hpp"
#include "checkpoint/reader.hpp"
#include "checkpoint/writer.hpp"
#include "tests/checkpoint/helpers.hpp"
#include "tests/support/run.hpp"

using namespace harvest::checkpoint;
using harvest::checkpoint::test::ScratchDir;
using harvest::test::run;

namespace {
const std::string harvest_exe = HARVEST_EXE;
}

TEST_CASE("ckpt inspect prints metadata and the dataset tree", "[checkpoint][cli]") {
  ScratchDir dir("cli-inspect");
  const auto file = dir.path() / "a.h5";
  write_checkpoint_file(test::make_snapshot(77), file);
  const auto r = run(harvest_exe + " ckpt inspect " + file.string());
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains("step 77, epoch 7"));
  CHECK_THAT(r.output, Catch::Contains("LibTorch 2.11.0"));
  CHECK_THAT(r.output,
             Catch::Contains("model/\n  text/\n    token_embedding.weight  f16 [32, 8]  512 B"));
  CHECK_THAT(r.output, Catch::Contains("ln_post.bias  bf16 [16]  32 B  contiguous  xxh3-64:"));
  const auto j = run(harvest_exe + " ckpt inspect --json " + file.string());
  CHECK(j.exit_code == 0);
  CHECK_THAT(j.output, Catch::Contains("\"path\": \"optimizer/step\""));
  const auto c = run(harvest_exe + " ckpt inspect --config " + file.string());
  CHECK_THAT(c.output, Catch::Contains("steps = 77"));
}

TEST_CASE("ckpt verify exits 0 on an intact file and 1 naming the corrupt dataset",
          "[checkpoint][cli]") {
  ScratchDir dir("cli-verify");
  const auto file = dir.path() / "v.h5";
  write_checkpoint_file(test::make_snapshot(5), file);
  const auto ok = run(harvest_exe + " ckpt verify " + file.string());
  INFO(ok.output);
  CHECK(ok.exit_code == 0);
  CHECK_THAT(ok.output, Catch::Contains("v.h5: ok (7 datasets"));

  uint64_t offset = 0;
  {
    const CheckpointReader reader(file);
    offset = *reader.find("model/text/token_embedding.weight")->file_offset + 3;
  }
  test::flip_byte(file, offset);
  const auto bad = run(harvest_exe + " ckpt verify " + file.string());
  INFO(bad.output);
  CHECK(bad.exit_code == 1);
  CHECK_THAT(bad.output, Catch::Contains("dataset 'model/text/token_embedding.weight' is corrupt"));

  const auto missing = run(harvest_exe + " ckpt verify " + (dir.path() / "none.h5").string());
  CHECK(missing.exit_code == 1);
  CHECK_THAT(missing.output, Catch::Contains("none.h5 does not exist"));
  CHECK(run(harvest_exe + " ckpt verify").exit_code == 2);
}

TEST_CASE("ckpt verify and inspect on a checkpoint folder cover every committed checkpoint",
          "[checkpoint][cli]") {
  ScratchDir dir("cli-dir");
  for (int64_t step : {10, 20}) {
    write_part(test::make_snapshot(step), dir.path());
    commit_checkpoint(dir.path(), step, 1);
  }
  const auto listing = run(harvest_exe + " ckpt inspect " + dir.path().string());
  CHECK(listing.exit_code == 0);
  CHECK_THAT(listing.output, Catch::Contains("2 committed checkpoint(s)"));
  CHECK_THAT(listing.output, Catch::Contains("step-000000000020  step 20"));
  // --json: the same list, newest first, for scripts (deploy/slurm reads the committed step).
  const auto j = run(harvest_exe + " ckpt inspect --json " + dir.path().string());
  INFO(j.output);
  CHECK(j.exit_code == 0);
  CHECK_THAT(j.output, Catch::StartsWith("{\"committed\":[{\"bytes\":") &&
                           Catch::Contains("\"name\":\"step-000000000020\"") &&
                           Catch::Contains("\"step\":10"));
  // A step folder is shown as its committed entry; an uncommitted one is refused by name.
  const auto one = run(harvest_exe + " ckpt inspect --json " +
                       checkpoint_folder(dir.path(), 10).string());
  CHECK(one.exit_code == 0);
  CHECK_THAT(one.output, Catch::Contains("\"step\":10") && !Catch::Contains("\"step\":20"));
  std::filesystem::create_directories(dir.path() / "step-000000000030");
  const auto unfinished = run(harvest_exe + " ckpt inspect " + (dir.path() / "step-000000000030").string());
  CHECK(unfinished.exit_code == 1);
  CHECK_THAT(unfinished.output, Catch::Contains("step-000000000030: not a committed checkpoint"));
  CHECK(run(harvest_exe + " ckpt verify " + dir.path().string()).exit_code == 0);
  std::filesystem::resize_file(part_path(dir.path(), 10, 0, 1), 100);
  const auto bad = run(harvest_exe + " ckpt verify " + dir.path().string());
  CHECK(bad.exit_code == 1);
  CHECK_THAT(bad.output, Catch::Contains("step-000000000010: FAILED"));
}

TEST_CASE("bench checkpoint prints JSON on its last line", "[checkpoint][cli]") {
  ScratchDir dir("cli-bench");
  const auto r = run(harvest_exe + " bench checkpoint --size-mb 2 --reps 1 --json --dir " +
                     dir.path().string());
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const auto last = r.output.substr(r.output.rfind('{'));
  for (const char* key :
       {"save_gbps", "raw_write_gbps", "sync_save_s", "async_block_s", "load_gbps"})
    CHECK_THAT(last, Catch::Contains(std::string("\"") + key + "\""));
}
