#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/support/run.hpp"

using harvest::test::run;
namespace fs = std::filesystem;

namespace {
const std::string harvest_exe = HARVEST_EXE;

std::string write_temp(const std::string& name, const std::string& text) {
  const fs::path dir = fs::temp_directory_path() / ("harvest-cli-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path p = dir / name;
  std::ofstream(p) << text;
  return p.string();
}
}  // namespace

TEST_CASE("version flag prints every library version", "[cli]") {
  const auto r = run(harvest_exe + " --version");
  CHECK(r.exit_code == 0);
  for (const char* lib : {"harvest 0.", "LibTorch 2.", "device(s) visible", "FFmpeg ", "HDF5 1.", "ZeroMQ 4.",
                          "Cap'n Proto 0."})
    CHECK_THAT(r.output, Catch::Contains(lib));
#if HARVEST_HAVE_NCCL
  CHECK_THAT(r.output, Catch::Contains("NCCL 2.") && Catch::Contains("CUDA runtime"));
#endif
}

TEST_CASE("usage errors exit 2 with a hint", "[cli]") {
  const auto none = run(harvest_exe);
  CHECK(none.exit_code == 2);
  const auto bogus = run(harvest_exe + " frobnicate");
  CHECK(bogus.exit_code == 2);
  CHECK_THAT(bogus.output, Catch::Contains("usage error"));
  const auto bad_flag = run(harvest_exe + " config show --no-such-flag");
  CHECK(bad_flag.exit_code == 2);
  const auto bad_level = run(harvest_exe + " --log-level loud config show");
  CHECK(bad_level.exit_code == 2);
  CHECK_THAT(bad_level.output, Catch::Contains("--log-level: unknown log level 'loud'"));
}

TEST_CASE("HARVEST_HEAP: a bad value exits 2 naming it and the debug log says which heap policy holds",
          "[cli]") {
  const auto bad = run("HARVEST_HEAP=keep " + harvest_exe + " config show");
  CHECK(bad.exit_code == 2);
  CHECK_THAT(bad.output, Catch::Contains("config error: HARVEST_HEAP='keep' (environment)"));
  const auto system = run("HARVEST_HEAP=system " + harvest_exe + " --log-level debug config show");
  CHECK(system.exit_code == 0);
  CHECK_THAT(system.output, Catch::Contains("heap: the C library's defaults (HARVEST_HEAP=system)"));
}

TEST_CASE("--help works on every level", "[cli]") {
  for (const char* args : {" --help", " config --help", " config show --help", " config check --help"}) {
    const auto r = run(harvest_exe + args);
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.output, Catch::Contains("Usage") || Catch::Contains("usage") || Catch::Contains("Options"));
  }
}

TEST_CASE("config check: 0 for a valid file, 2 listing the problems otherwise", "[cli][config]") {
  const auto good = write_temp("good.toml", "[model]\nframes = 4\n");
  const auto ok = run(harvest_exe + " config check " + good);
  CHECK(ok.exit_code == 0);
  CHECK_THAT(ok.output, Catch::Contains("ok"));

  const auto bad = write_temp("bad.toml", "[model]\nframes = 0\ndrop_raito = 2\n");
  const auto r = run(harvest_exe + " config check " + bad);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("2 problems"));
  CHECK_THAT(r.output, Catch::Contains(bad + ":2:10: model.frames"));
  CHECK_THAT(r.output, Catch::Contains("did you mean 'drop_ratio'?"));

  // A directory opens as an empty stream: it must not pass as a config of defaults.
  const std::string dir = std::filesystem::path(good).parent_path().string();
  const auto d = run(harvest_exe + " config check " + dir);
  CHECK(d.exit_code == 2);
  CHECK_THAT(d.output, Catch::Contains(dir + ": is a directory"));

  const auto missing = run(harvest_exe + " config check /nonexistent.toml");
  CHECK(missing.exit_code == 2);
  CHECK_THAT(missing.output, Catch::Contains("/nonexistent.toml"));
}

TEST_CASE("config show prints the resolved config with overrides", "[cli][config]") {
  const auto file = write_temp("show.toml", "[train]\nlr = 0.001\n");
  const auto r = run(harvest_exe + " config show --config " + file + " --set train.steps=77");
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains("lr = 0.001"));
  CHECK_THAT(r.output, Catch::Contains("steps = 77"));
  const auto bad = run(harvest_exe + " config show --set train.steps=-1");
  CHECK(bad.exit_code == 2);
  CHECK_THAT(bad.output, Catch::Contains("--set train.steps: train.steps: must be in"));
}

TEST_CASE("shipped configs are valid", "[cli][config]") {
  for (const auto& entry : fs::directory_iterator(std::string(HARVEST_SOURCE_DIR) + "/configs")) {
    if (entry.path().extension() != ".toml") continue;
    INFO(entry.path());
    CHECK(run(harvest_exe + " config check " + entry.path().string()).exit_code == 0);
  }
}
