#include <catch2/catch.hpp>

#include <filesystem>
#include <unistd.h>

#include <fstream>

#include "core/error.hpp"
#include "core/metrics.hpp"

using namespace harvest;
namespace fs = std::filesystem;

TEST_CASE("metrics writer appends one JSON object per line", "[core][metrics]") {
  const fs::path dir = fs::temp_directory_path() / ("harvest-metrics-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const std::string path = (dir / "run" / "metrics.jsonl").string();
  {
    MetricsWriter w(path);
    w.write({{"step", 1}, {"loss", 2.5}});
    w.write({{"step", 2}, {"loss", 2.25}, {"time", 7.0}});
  }
  {
    MetricsWriter again(path);  // a resumed run continues the file
    again.write({{"step", 3}});
  }
  std::ifstream in(path);
  std::string line;
  std::vector<nlohmann::json> rows;
  while (std::getline(in, line)) rows.push_back(nlohmann::json::parse(line));
  REQUIRE(rows.size() == 3);
  CHECK(rows[0]["step"] == 1);
  CHECK(rows[0]["loss"] == 2.5);
  CHECK(rows[0].contains("time"));
  CHECK(rows[1]["time"] == 7.0);
  CHECK(rows[2]["step"] == 3);
  fs::remove_all(dir);
}

TEST_CASE("metrics writer names an unwritable path", "[core][metrics]") {
  CHECK_THROWS_WITH(MetricsWriter("/proc/harvest-nope/metrics.jsonl"), Catch::Contains("/proc/harvest-nope"));
}
