#include "tests/support/torch_catch.hpp"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "tests/support/run.hpp"
#include "worker/lr_schedule.hpp"
#include "worker/optimizer.hpp"

using harvest::test::run;
namespace fs = std::filesystem;

namespace {
const std::string probe = HARVEST_DDP_PROBE;

fs::path temp_dir() {
  const fs::path d = fs::temp_directory_path() / ("harvest-ddp-" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

int next_port() {
  static int offset = 0;
  return 30000 + (::getpid() % 2000) * 10 + (offset++ % 10);
}

std::vector<float> read_floats(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<char> v((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<float> out(v.size() / sizeof(float));
  std::memcpy(out.data(), v.data(), out.size() * sizeof(float));
  return out;
}

// ||a - b|| / ||b|| over all parameters.
double rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double diff = 0, norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    norm += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(diff / norm);
}

std::string two_ranks(const std::string& common, const fs::path& dir, const std::string& extra = "") {
  const std::string port = std::to_string(next_port());
  return "( " + probe + " --rank 0 --world 2 --port " + port + " " + common + " --out " +
         (dir / "r0.bin").string() + " " + extra + " & " + probe + " --rank 1 --world 2 --port " + port +
         " " + common + " --out " + (dir / "r1.bin").string() + " " + extra + " ; wait )";
}
}  // namespace

TEST_CASE("DDP equivalence: 2 Gloo workers with B/2 equal 1 worker with B", "[worker][gloo]") {
  const auto dir = temp_dir();
  const std::string common = "--steps 6 --global-batch 8 --bucket-mb 0.001";
  const auto single = run(probe + " --rank 0 --world 1 " + common + " --out " + (dir / "single.bin").string());
  REQUIRE(single.exit_code == 0);
  const auto pair = run(two_ranks(common, dir));
  INFO(pair.output);
  REQUIRE(pair.exit_code == 0);
  const auto one = read_floats(dir / "single.bin");
  const auto r0 = read_floats(dir / "r0.bin");
  const auto r1 = read_floats(dir / "r1.bin");
  REQUIRE(one.size() > 100);
  CHECK(r0 == r1);  // replicas stay bitwise identical
  CHECK(rel_diff(r0, one) < 1e-5);
  CHECK(rel_diff(r0, one) > 0);  // really two different reductions, not one run read twice
  // Tiny buckets: several of them, and all-reduces start while backward is still running.
  CHECK_THAT(pair.output, Catch::Contains("\"buckets\": "));
  CHECK_THAT(pair.output, !Catch::Contains("\"started_in_backward\": 0,"));
  fs::remove_all(dir);
}

TEST_CASE("a NaN on one rank skips the step on every rank", "[worker][gloo]") {
  const auto dir = temp_dir();
  const auto r = run(two_ranks("--steps 5 --global-batch 8", dir, "--nan-step 2 --nan-rank 1"));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains("\"rank\": 0, ") && Catch::Contains("\"skipped\": [2]}"));
  // Both ranks report the skip and end with identical (finite) parameters.
  const auto r0 = read_floats(dir / "r0.bin");
  const auto r1 = read_floats(dir / "r1.bin");
  CHECK(r0 == r1);
  for (float v : r0) REQUIRE(std::isfinite(v));
  fs::remove_all(dir);
}

TEST_CASE("a hung peer fails the collective at its deadline, not at Gloo's timeout", "[worker][gloo]") {
  const auto dir = temp_dir();
  const auto port = std::to_string(next_port());
  const auto start = std::chrono::steady_clock::now();
  const auto r = run("( timeout 60 " + probe + " --rank 1 --world 2 --port " + port +
                     " --hang-rank 1 --steps 2 & pid=$!; " + probe + " --rank 0 --world 2 --port " + port +
                     " --steps 2 --deadline-s 1.5; echo rank0_exit=$?; kill $pid; wait )");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  INFO(r.output);
  CHECK_THAT(r.output, Catch::Contains("rank0_exit=1"));
  CHECK_THAT(r.output, Catch::Contains("all_reduce missed its deadline"));
  CHECK(seconds < 20);
  fs::remove_all(dir);
}

TEST_CASE("cosine schedule: warm-up, peak, floor", "[worker]") {
  const harvest::CosineSchedule s(1e-3, 0.01, 10, 110);
  CHECK(s.lr(0) == Approx(1e-4));
  CHECK(s.lr(9) == Approx(1e-3));
  CHECK(s.lr(10) == Approx(1e-3));
  CHECK(s.lr(60) == Approx(0.5 * (1e-3 + 1e-5)));
  CHECK(s.lr(109) > 1e-5);
  CHECK(s.lr(109) < 1.1e-5);
  CHECK(s.lr(110) == Approx(1e-5));
  CHECK(s.lr(500) == Approx(1e-5));
  CHECK(harvest::warmup_steps_for(0.5, 1000, 50, 100) == 10);
  CHECK(harvest::warmup_steps_for(0.5, 1000000, 50, 100) == 100);
  CHECK_THROWS_WITH(harvest::CosineSchedule(1e-3, 0.01, 20, 10), Catch::Contains("train.steps"));
}

namespace {
const std::string train_probe = HARVEST_TRAIN_PROBE;

std::string two_trainers(const std::string& common, const fs::path& dir, const std::string& extra = "") {
  const std::string port = std::to_string(next_port());
  return "( " + train_probe + " --rank 0 --world 2 --port " + port + " " + common + " --out " +
         (dir / "r0.bin").string() + " " + extra + " & " + train_probe + " --rank 1 --world 2 --port " +
         port + " " + common + " --out " + (dir / "r1.bin").string() + " " + extra + " ; wait )";
}

// The "vtc" value of `rank` at `step` from the probes' JSON lines.
double vtc_at(const std::string& output, int rank, int step) {
  const std::string key = "{\"rank\": " + std::to_string(rank) + ", \"step\": " + std::to_string(step) + ",";
  const auto at = output.find(key);
  REQUIRE(at != std::string::npos);
  const auto v = output.find("\"vtc\": ", at);
  return std::stod(output.substr(v + 7));
}
}  // namespace

TEST_CASE("DDP equivalence of the real training step: 2 Gloo workers x B/2 == 1 worker x B",
          "[worker][gloo][model]") {
  const auto dir = temp_dir();
  const std::string common = "--steps 3 --global-batch 8 --drop 0 --mask 0";
  const auto single = run(train_probe + " --rank 0 --world 1 " + common + " --out " + (dir / "single.bin").string());
  INFO(single.output);
  REQUIRE(single.exit_code == 0);
  const auto pair = run(two_trainers(common, dir));
  INFO(pair.output);
  REQUIRE(pair.exit_code == 0);
  // The all-gathered contrastive loss is the single-process full-batch loss, on every rank.
  for (int step = 0; step < 3; ++step) {
    CHECK(vtc_at(pair.output, 0, step) == Approx(vtc_at(single.output, 0, step)).epsilon(1e-6));
    CHECK(vtc_at(pair.output, 1, step) == vtc_at(pair.output, 0, step));
  }
  // ... and its gradients are: parameters after 3 AdamW steps agree.
  const auto one = read_floats(dir / "single.bin");
  const auto r0 = read_floats(dir / "r0.bin");
  CHECK(read_floats(dir / "r1.bin") == r0);
  CHECK(rel_diff(r0, one) < 1e-5);
  fs::remove_all(dir);
}

TEST_CASE("recipe randomness on: replicas stay identical, MLM trains", "[worker][gloo][model]") {
  const auto dir = temp_dir();
  const auto pair = run(two_trainers("--steps 2 --global-batch 8 --drop 0.5 --mask 0.5", dir));
  INFO(pair.output);
  REQUIRE(pair.exit_code == 0);
  CHECK(read_floats(dir / "r1.bin") == read_floats(dir / "r0.bin"));
  CHECK_THAT(pair.output, !Catch::Contains("\"mlm\": 0,"));
  CHECK_THAT(pair.output, !Catch::Contains("nan"));
  fs::remove_all(dir);
}

TEST_CASE("a non-finite loss on one rank skips that step on every rank", "[worker][gloo][model]") {
  const auto dir = temp_dir();
  const auto pair = run(two_trainers("--steps 3 --global-batch 8", dir, "--nan-step 1 --nan-rank 1"));
  INFO(pair.output);
  REQUIRE(pair.exit_code == 0);
  CHECK_THAT(pair.output, Catch::Contains("{\"rank\": 0, \"step\": 1, \"applied\": 0,"));
  CHECK_THAT(pair.output, Catch::Contains("{\"rank\": 1, \"step\": 1, \"applied\": 0}"));
  CHECK_THAT(pair.output, Catch::Contains("{\"rank\": 0, \"step\": 2, \"applied\": 1,"));
  const auto r0 = read_floats(dir / "r0.bin");
  CHECK(read_floats(dir / "r1.bin") == r0);
  for (float v : r0) REQUIRE(std::isfinite(v));
  fs::remove_all(dir);
}

TEST_CASE("exact resume: stop after step 2, resume, end bitwise equal to an uninterrupted run",
          "[worker][checkpoint][model]") {
  const auto dir = temp_dir();
  const std::string common = "--steps 4 --global-batch 8 --drop 0.5 --mask 0.5";
  SECTION("one worker") {
    REQUIRE(run(train_probe + " " + common + " --out " + (dir / "full.bin").string()).exit_code == 0);
    const auto first = run(train_probe + " --steps 2 --global-batch 8 --drop 0.5 --mask 0.5 --save-after 2 --checkpoint-dir " +
                           (dir / "ck").string());
    INFO(first.output);
    REQUIRE(first.exit_code == 0);
    const auto resumed = run(train_probe + " " + common + " --resume " + (dir / "ck").string() + " --out " +
                             (dir / "resumed.bin").string());
    INFO(resumed.output);
    REQUIRE(resumed.exit_code == 0);
    CHECK_THAT(resumed.output, !Catch::Contains("\"step\": 1,") && Catch::Contains("\"step\": 2,"));
    CHECK(read_floats(dir / "resumed.bin") == read_floats(dir / "full.bin"));
  }
  SECTION("two Gloo workers") {
    REQUIRE(run(two_trainers(common, dir)).exit_code == 0);
    const auto full = read_floats(dir / "r0.bin");
    const auto first = run(two_trainers("--steps 2 --global-batch 8 --drop 0.5 --mask 0.5", dir,
                                        "--save-after 2 --checkpoint-dir " + (dir / "ck2").string()));
    INFO(first.output);
    REQUIRE(first.exit_code == 0);
    const auto resumed = run(two_trainers(common, dir, "--resume " + (dir / "ck2").string()));
    INFO(resumed.output);
    REQUIRE(resumed.exit_code == 0);
    CHECK(read_floats(dir / "r0.bin") == full);
    CHECK(read_floats(dir / "r1.bin") == full);
  }
  fs::remove_all(dir);
}
