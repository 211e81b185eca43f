// The save path's speed-ups keep their promises: deferred (parallel) snapshot copies, recycled
// buffers, direct data writes, and what a failing disk leaves behind.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "checkpoint/commit.hpp"
#include "checkpoint/copy_pool.hpp"
#include "checkpoint/reader.hpp"
#include "checkpoint/saver.hpp"
#include "core/error.hpp"
#include "tests/checkpoint/helpers.hpp"

using namespace harvest::checkpoint;
using harvest::checkpoint::test::ScratchDir;
namespace fs = std::filesystem;

namespace {
std::vector<std::byte> random_bytes(std::size_t n, uint64_t seed) {
  std::vector<std::byte> v(n);
  test::fill_random(v.data(), n, seed);
  return v;
}

bool file_holds(const fs::path& file, const std::string& path, const std::vector<std::byte>& want) {
  const CheckpointReader reader(file);
  const HostBuffer got = reader.read(path);
  return got.size() == want.size() && std::memcmp(got.data(), want.data(), want.size()) == 0;
}

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    names.push_back(fs::relative(e.path(), dir).string());
  return names;
}
}  // namespace

TEST_CASE("CopyPool copies every byte with any number of helpers", "[checkpoint][saver]") {
  for (const int helpers : {0, 1, 3}) {
    CopyPool pool(helpers);
    std::vector<std::vector<std::byte>> src, dst;
    std::vector<CopyTask> tasks;
    for (const std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{4097},
                                CopyPool::kPieceBytes * 3 + 5, std::size_t{12345}}) {
      src.push_back(random_bytes(n, n + helpers));
      dst.emplace_back(n);
    }
    for (std::size_t i = 0; i < src.size(); ++i)
      tasks.push_back({dst[i].data(), src[i].data(), src[i].size()});
    for (int round = 0; round < 3; ++round) {  // the helpers are reused between runs
      for (auto& d : dst) std::fill(d.begin(), d.end(), std::byte{0});
      pool.run(tasks);
      INFO("helpers " << helpers << " round " << round);
      CHECK(dst == src);
    }
  }
}

TEST_CASE("a tensor changed right after save() returns does not change the saved checkpoint",
          "[checkpoint][saver]") {
  ScratchDir dir("saverchange");
  for (const bool async : {true, false}) {
    SaverOptions options;
    options.dir = dir.path() / (async ? "async" : "sync");
    options.async = async;
    options.copy_helpers = 2;
    CheckpointSaver saver(options);
    std::vector<std::byte> weights = random_bytes(CopyPool::kPieceBytes * 3 + 64, 7);
    std::vector<std::byte> moments = random_bytes(4096, 8);
    const std::vector<std::byte> weights_at_save = weights, moments_at_save = moments;
    Snapshot s = saver.snapshot();
    s.meta.step = 5;
    s.add_deferred("model/w", DType::F32, {static_cast<int64_t>(weights.size() / 4)},
                   weights.data());
    s.add_deferred("optimizer/m", DType::F32, {1024}, moments.data());
    CHECK(s.has_pending_copies());
    saver.save(std::move(s));
    // The training thread's next step overwrites its tensors at once.
    std::fill(weights.begin(), weights.end(), std::byte{0x5a});
    std::fill(moments.begin(), moments.end(), std::byte{0xa5});
    REQUIRE(saver.wait()->ok);
    const fs::path part = part_path(options.dir, 5, 0, 1);
    CHECK(file_holds(part, "model/w", weights_at_save));
    CHECK(file_holds(part, "optimizer/m", moments_at_save));
  }
}

TEST_CASE("deferred snapshot copies land in the previous save's buffers", "[checkpoint][saver]") {
  ScratchDir dir("saverreuse");
  SaverOptions options;
  options.dir = dir.path();
  CheckpointSaver saver(options);
  const std::vector<std::byte> a = random_bytes(1 << 20, 1), b = random_bytes(1 << 20, 2);
  std::vector<const std::byte*> storage;
  for (int64_t step = 1; step <= 3; ++step) {
    Snapshot s = saver.snapshot();
    s.meta.step = step;
    s.add_deferred("model/a", DType::U8, {1 << 20}, a.data());
    s.add_deferred("model/b", DType::U8, {1 << 20}, b.data());
    storage.push_back(s.records()[0].bytes.data());
    storage.push_back(s.records()[1].bytes.data());
    saver.save(std::move(s));
    REQUIRE(saver.wait()->ok);
  }
  // From the second save on, the same two buffers (in either order: both have one size).
  CHECK(std::is_permutation(storage.begin() + 2, storage.begin() + 4, storage.begin()));
  CHECK(std::is_permutation(storage.begin() + 4, storage.begin() + 6, storage.begin()));
  CHECK(file_holds(part_path(dir.path(), 3, 0, 1), "model/b", b));
}

TEST_CASE("writing a snapshot whose deferred copies were not made is refused",
          "[checkpoint][saver]") {
  ScratchDir dir("deferred");
  const std::vector<std::byte> a = random_bytes(64, 1);
  Snapshot s;
  s.add_deferred("model/a", DType::U8, {64}, a.data());
  CHECK_THROWS_WITH(write_checkpoint_file(s, dir.path() / "x.h5"),
                    Catch::Contains("x.h5") && Catch::Contains("copy_pending"));
  s.copy_pending();
  write_checkpoint_file(s, dir.path() / "x.h5");
  CHECK(file_holds(dir.path() / "x.h5", "model/a", a));
}

TEST_CASE("a save during an in-flight save waits for it, then both are committed",
          "[checkpoint][saver]") {
  ScratchDir dir("inflight");
  SaverOptions options;
  options.dir = dir.path();
  options.retention = {5, 0};
  CheckpointSaver saver(options);
  // Large enough that the first write is still running when the second save() arrives.
  const std::vector<std::byte> big = random_bytes(std::size_t{48} << 20, 3);
  Snapshot first = saver.snapshot();
  first.meta.step = 1;
  first.add_deferred("model/w", DType::U8, {static_cast<int64_t>(big.size())}, big.data());
  saver.save(std::move(first));
  saver.save(test::make_snapshot(2));
  // save() returned only once the first save had finished: its status is already reported.
  const auto after_second = saver.status();
  REQUIRE(after_second.has_value());
  CHECK(after_second->step == 1);
  CHECK(after_second->ok);
  REQUIRE(saver.wait()->step == 2);
  const auto manifest = read_manifest(dir.path());
  REQUIRE(manifest.has_value());
  REQUIRE(manifest->committed.size() == 2);
  CHECK(manifest->committed[0].step == 2);
  CHECK(file_holds(part_path(dir.path(), 1, 0, 1), "model/w", big));
  CHECK(test::same_records(CheckpointReader(part_path(dir.path(), 2, 0, 1)).read_all(),
                           test::make_snapshot(2)));
}

TEST_CASE("large datasets start on a page boundary (direct writes fill whole pages)",
          "[checkpoint][file]") {
  ScratchDir dir("align");
  Snapshot s = test::make_snapshot(3, 0, 1, 64);
  const std::vector<std::byte> big = random_bytes(std::size_t{1} << 20, 4);
  s.add_copy("model/big", DType::U8, {1 << 20}, big.data());
  write_checkpoint_file(s, dir.path() / "a.h5");
  const CheckpointReader reader(dir.path() / "a.h5");
  for (const RecordInfo& r : reader.records()) {
    if (r.nbytes < 64 * 1024) continue;
    INFO(r.path);
    REQUIRE(r.file_offset.has_value());
    CHECK(*r.file_offset % 4096 == 0);
  }
  CHECK(test::same_records(reader.read_all(), s));
}

TEST_CASE("a full disk fails the save naming the file and leaves no half-written checkpoint",
          "[checkpoint][saver]") {
  ScratchDir dir("diskfull");
  write_part(test::make_snapshot(10), dir.path());
  commit_checkpoint(dir.path(), 10, 1);
  // In a child: RLIMIT_FSIZE makes every write past 256 KiB fail with EFBIG, as a full disk
  // would (ENOSPC) part-way through the data.
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    const rlimit limit{256 * 1024, 256 * 1024};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    SaverOptions options;
    options.dir = dir.path();
    CheckpointSaver saver(options);
    const std::vector<std::byte> big = random_bytes(std::size_t{2} << 20, 5);
    Snapshot s = saver.snapshot();
    s.meta.step = 20;
    s.add_deferred("model/w", DType::U8, {static_cast<int64_t>(big.size())}, big.data());
    saver.save(std::move(s));
    const auto status = saver.wait();
    const std::string tmp = part_path(dir.path(), 20, 0, 1).string() + ".tmp";
    const bool reported = status && !status->ok && status->error.find(tmp) != std::string::npos &&
                          status->error.find("model/w") != std::string::npos &&
                          status->error.find("File too large") != std::string::npos;
    if (!reported) std::fprintf(stderr, "error: %s\n", status ? status->error.c_str() : "none");
    ::_exit(reported ? 0 : 1);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  // Nothing of step 20 is visible: no part, no .tmp; the latest committed checkpoint is intact.
  for (const std::string& name : names_in(dir.path())) {
    INFO(name);
    CHECK(name.find(".tmp") == std::string::npos);
    const bool other_part = name.find("part-00000-of-00001.h5") != std::string::npos &&
                            name.rfind("step-000000000010", 0) != 0;
    CHECK_FALSE(other_part);
  }
  const auto latest = resolve_latest(dir.path());
  REQUIRE(latest.has_value());
  CHECK(latest->checkpoint.step == 10);
  CHECK(latest->skipped.empty());
}

TEST_CASE("an unwritable checkpoint folder fails the save naming it, and nothing is committed",
          "[checkpoint][saver]") {
  ScratchDir dir("unwritable");
  // /proc refuses new entries even to root, so this holds whoever runs the tests.
  SaverOptions options;
  options.dir = "/proc/harvest-no-such-dir/ckpt";
  CheckpointSaver saver(options);
  saver.save(test::make_snapshot(1));
  const auto status = saver.wait();
  REQUIRE(status.has_value());
  CHECK_FALSE(status->ok);
  CHECK_THAT(status->error, Catch::Contains("/proc/harvest-no-such-dir"));
  CHECK(saver.failed_saves() == 1);
}
