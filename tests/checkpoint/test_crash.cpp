// Crash safety: a saving process killed with SIGKILL at random moments never leaves a state in
// which the latest committed checkpoint fails to load.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <random>
#include <thread>

#include "checkpoint/commit.hpp"
#include "checkpoint/reader.hpp"
#include "checkpoint/saver.hpp"
#include "tests/checkpoint/helpers.hpp"

using namespace harvest::checkpoint;
using harvest::checkpoint::test::ScratchDir;
namespace fs = std::filesystem;

namespace {
// The child: saves checkpoints back to back (write part, commit, retention) until killed. The
// content of step s is make_snapshot(s, 0, 1, scale(s)), so the parent can check it.
int64_t scale_of(int64_t step) {
  return 1 + step % 97;
}

[[noreturn]] void save_forever(const fs::path& dir, int64_t first_step, bool async) {
  try {
    SaverOptions options;
    options.dir = dir;
    options.async = async;
    options.retention = {2, 0};
    CheckpointSaver saver(options);
    for (int64_t step = first_step;; ++step)
      saver.save(test::make_snapshot(step, 0, 1, scale_of(step)));
  } catch (...) {
  }
  ::_exit(3);  // never reached unless saving itself throws: the parent reports it
}
}  // namespace

TEST_CASE("SIGKILL at random points while saving never breaks the latest committed checkpoint",
          "[checkpoint][crash]") {
  ScratchDir dir("crash");
  std::mt19937_64 rng(20261128);
  constexpr int kTrials = 24;
  int with_checkpoint = 0;
  int64_t last_step = -1;
  for (int trial = 0; trial < kTrials; ++trial) {
    const int64_t first_step = (trial + 1) * 1000;
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) save_forever(dir.path(), first_step, trial % 2 == 1);
    std::this_thread::sleep_for(std::chrono::microseconds(2000 + rng() % 150000));
    REQUIRE(::kill(child, SIGKILL) == 0);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    INFO("trial " << trial);
    REQUIRE(WIFSIGNALED(status));  // it was still saving, not failing

    const auto manifest = read_manifest(dir.path());
    if (!manifest) {
      CHECK(last_step == -1);  // nothing committed yet: nothing may be lost either
      continue;
    }
    const auto resolved = resolve_latest(dir.path(), VerifyLevel::Full);
    REQUIRE(resolved.has_value());
    CHECK(resolved->skipped.empty());  // the latest itself loads: no fall-back was needed
    const int64_t step = resolved->checkpoint.step;
    CHECK(step == manifest->committed.front().step);
    CHECK(step >= last_step);  // a committed checkpoint never goes away before a newer one
    const CheckpointReader reader(resolved->parts.at(0));
    CHECK(test::same_records(reader.read_all(), test::make_snapshot(step, 0, 1, scale_of(step))));
    last_step = step;
    ++with_checkpoint;
  }
  CHECK(with_checkpoint >= kTrials / 2);
}
