// CheckpointSaver: async saves return at once, a save waits for the previous one, failures are
// reported and the next save retries.
#include <catch2/catch.hpp>
#include <cstring>

#include "checkpoint/commit.hpp"
#include "checkpoint/from_config.hpp"
#include "checkpoint/reader.hpp"
#include "checkpoint/saver.hpp"
#include "tests/checkpoint/helpers.hpp"

using namespace harvest::checkpoint;
using harvest::checkpoint::test::ScratchDir;
namespace fs = std::filesystem;

TEST_CASE("async saves commit in order and apply retention", "[checkpoint][saver]") {
  ScratchDir dir("saver");
  for (const bool async : {true, false}) {
    SaverOptions options;
    options.dir = dir.path() / (async ? "async" : "sync");
    options.async = async;
    options.retention = {2, 0};
    {
      CheckpointSaver saver(options);
      CHECK_FALSE(saver.status().has_value());
      for (int64_t step = 1; step <= 4; ++step) saver.save(test::make_snapshot(step * 10, 0, 1, 8));
      const auto status = saver.wait();
      REQUIRE(status.has_value());
      CHECK(status->ok);
      CHECK(status->step == 40);
      CHECK(saver.failed_saves() == 0);
    }
    const auto manifest = read_manifest(options.dir);
    REQUIRE(manifest.has_value());
    REQUIRE(manifest->committed.size() == 2);
    CHECK(manifest->committed[0].step == 40);
    CHECK(manifest->committed[1].step == 30);
    const CheckpointReader reader(part_path(options.dir, 40, 0, 1));
    CHECK(test::same_records(reader.read_all(), test::make_snapshot(40, 0, 1, 8)));
  }
}

TEST_CASE("a failed save is reported, training goes on, and the next save succeeds",
          "[checkpoint][saver]") {
  ScratchDir dir("saverfail");
  const fs::path blocker = dir.path() / "ckpt";
  std::ofstream(blocker) << "a file where the checkpoint folder should be";
  SaverOptions options;
  options.dir = blocker;
  CheckpointSaver saver(options);
  saver.save(test::make_snapshot(1));
  auto status = saver.wait();
  REQUIRE(status.has_value());
  CHECK_FALSE(status->ok);
  CHECK_THAT(status->error, Catch::Contains("ckpt"));
  CHECK(saver.failed_saves() == 1);

  fs::remove(blocker);  // the disk problem goes away: the next interval's save works
  saver.save(test::make_snapshot(2));
  status = saver.wait();
  REQUIRE(status.has_value());
  CHECK(status->ok);
  CHECK(resolve_latest(blocker)->checkpoint.step == 2);
}

TEST_CASE("multi-rank parts are reported, not committed, by the saver", "[checkpoint][saver]") {
  ScratchDir dir("saverrank");
  std::vector<int64_t> reported;
  SaverOptions options;
  options.dir = dir.path();
  options.on_part_durable = [&reported](int64_t step, const fs::path& part) {
    CHECK(fs::exists(part));
    reported.push_back(step);
  };
  {
    CheckpointSaver saver(options);
    saver.save(test::make_snapshot(7, 1, 2));
    CHECK(saver.wait()->ok);
  }
  CHECK(reported == std::vector<int64_t>{7});
  CHECK_FALSE(read_manifest(dir.path()).has_value());  // the coordinator commits
  write_part(test::make_snapshot(7, 0, 2), dir.path());
  commit_checkpoint(dir.path(), 7, 2);
  CHECK(resolve_latest(dir.path())->checkpoint.world_size == 2);
}

TEST_CASE("the saver recycles snapshot buffers so the blocking copy needs no fresh memory",
          "[checkpoint][saver]") {
  ScratchDir dir("saverpool");
  SaverOptions options;
  options.dir = dir.path();
  CheckpointSaver saver(options);
  Snapshot first = saver.snapshot();
  first.meta.step = 1;
  std::byte* storage = first.add("model/w", DType::F32, {1024});
  test::fill_random(storage, 4096, 1);
  saver.save(std::move(first));
  REQUIRE(saver.wait()->ok);
  Snapshot second = saver.snapshot();
  second.meta.step = 2;
  CHECK(second.add("model/w", DType::F32, {1024}) == storage);  // the same memory, already mapped
  CHECK(second.add("model/v", DType::F32, {1024}) != storage);
  test::fill_random(second.records()[0].bytes.data(), 4096, 2);
  test::fill_random(second.records()[1].bytes.data(), 4096, 3);
  saver.save(std::move(second));
  REQUIRE(saver.wait()->ok);
  const CheckpointReader reader(part_path(dir.path(), 2, 0, 1));
  const HostBuffer w = reader.read("model/w");
  std::vector<std::byte> expected(4096);
  test::fill_random(expected.data(), expected.size(), 2);
  CHECK(std::memcmp(w.data(), expected.data(), 4096) == 0);
}

TEST_CASE("the [checkpoint] section drives the saver and the resume decision",
          "[checkpoint][config]") {
  ScratchDir dir("config");
  harvest::Config config;
  config.logging.run_dir = (dir.path() / "run").string();
  CHECK(checkpoint_dir(config) == dir.path() / "run" / "checkpoints");
  config.checkpoint.keep_last = 4;
  config.checkpoint.keep_every = 1000;
  config.checkpoint.compression = "gzip";
  config.checkpoint.async = false;
  const SaverOptions options = saver_options(config);
  CHECK(options.retention.keep_last == 4);
  CHECK(options.retention.keep_every == 1000);
  CHECK(options.write.compression == Compression::Gzip);
  CHECK_FALSE(options.async);

  CHECK_FALSE(resolve_resume(config).has_value());  // auto, nothing saved yet: fresh start
  write_part(test::make_snapshot(30), checkpoint_dir(config));
  commit_checkpoint(checkpoint_dir(config), 30, 1);
  CHECK(resolve_resume(config)->checkpoint.step == 30);
  config.checkpoint.resume = "never";
  CHECK_FALSE(resolve_resume(config).has_value());
  config.checkpoint.resume = checkpoint_dir(config).string();
  CHECK(resolve_resume(config)->checkpoint.step == 30);
  config.checkpoint.resume = (dir.path() / "elsewhere").string();
  CHECK_THROWS_WITH(resolve_resume(config),
                    Catch::Contains("checkpoint.resume: " + config.checkpoint.resume));
}
