// `harvest bench step` end to end on a tiny shape: the JSON line carries every ratio's timings,
// the reference's, and rejects bad arguments.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "tests/support/run.hpp"

using harvest::test::run;

namespace {

nlohmann::json last_json_line(const std::string& output) {
  const size_t end = output.find_last_not_of('\n');
  const size_t begin = output.rfind('\n', end);
  return nlohmann::json::parse(output.substr(begin == std::string::npos ? 0 : begin + 1));
}

}  // namespace

TEST_CASE("bench step prints medians per drop ratio beside the PyTorch reference", "[model][bench]") {
  const std::string command = std::string(HARVEST_EXE) +
                              " --log-level warn bench step --preset tiny --size 32 --frames 2 --batch 2"
                              " --drop 0,0.75 --repeats 1 --warmup 0 --threads 1 --json";
  const auto r = run(command);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const nlohmann::json j = last_json_line(r.output);
  for (const char* key : {"median_step_s", "encoder_median_s", "reference_median_step_s", "step_ratio_vs_reference"}) {
    INFO(key);
    REQUIRE(j.contains(key));
    CHECK(j[key].contains("0"));
    CHECK(j[key].contains("0.75"));
    CHECK(j[key]["0.75"].get<double>() > 0);
  }
  CHECK(j["tokens"]["0"] == 1 + 2 * 4);
  CHECK(j["tokens"]["0.75"] == 1 + 2);
  CHECK(j["preset"] == "tiny");
}

TEST_CASE("bench step rejects bad drop ratios", "[model][bench]") {
  const auto r = run(std::string(HARVEST_EXE) + " bench step --preset tiny --size 32 --drop 1.5 --no-reference");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("--drop"));
}
