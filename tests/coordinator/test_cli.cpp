// `harvest coordinator | status | keygen` end to end (built only where the harvest binary is).
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "cluster.hpp"
#include "tests/support/run.hpp"

using namespace harvest;
using namespace harvest::test;
using namespace std::chrono_literals;

TEST_CASE("harvest coordinator runs until SIGTERM; harvest status shows its members", "[coordinator][cli]") {
  Cluster cluster({"dist.world_size=1"});
  std::vector<std::string> argv{HARVEST_EXE, "coordinator"};
  for (const auto& s : cluster.common_sets()) argv.push_back(s);
  argv.push_back("--set");
  argv.push_back("dist.world_size=1");
  ChildProcess coordinator(argv, cluster.dir() + "/harvest-coordinator.log");
  cluster.start_peer("w0", {"--role", "worker"});
  REQUIRE(cluster.wait_for([](auto s) { return workers_running(s, 1, 1); }, 10s));

  SECTION("--json: members with role, rank, host, pid, state; generation, step, checkpoint") {
    const auto r = run(std::string(HARVEST_EXE) + " status --coordinator " + cluster.address() + " --json 2>/dev/null");
    REQUIRE(r.exit_code == 0);
    const auto j = nlohmann::json::parse(r.output);
    CHECK(j["generation"] == 1);
    CHECK(j["phase"] == "running");
    REQUIRE(j["members"].size() == 1);
    CHECK(j["members"][0]["role"] == "worker");
    CHECK(j["members"][0]["rank"] == 0);
    CHECK(j["members"][0]["state"] == "running");
    CHECK(j["members"][0]["pid"] == cluster.peer("w0").pid());
    CHECK(j["last_checkpoint"]["step"] == 0);
  }
  SECTION("the table") {
    const auto r = run(std::string(HARVEST_EXE) + " status --coordinator " + cluster.address());
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.output, Catch::Contains("generation 1 (running)") && Catch::Contains("worker"));
  }
  coordinator.kill(SIGTERM);
  CHECK(coordinator.wait(5s) == std::optional<int>(0));
}

TEST_CASE("harvest status without a coordinator exits 1 naming the address", "[coordinator][cli]") {
  const std::string address = "tcp://127.0.0.1:" + std::to_string(free_tcp_port());
  const auto r = run(std::string(HARVEST_EXE) + " status --coordinator " + address + " --timeout 0.3");
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("no status reply from " + address));
}

TEST_CASE("harvest keygen writes a key pair and refuses to overwrite it", "[coordinator][cli]") {
  Cluster scratch;
  const std::string prefix = scratch.dir() + "/k";
  CHECK(run(std::string(HARVEST_EXE) + " keygen --out " + prefix).exit_code == 0);
  CHECK(coord::read_key_file(prefix + ".public", "k").size() == 40);
  const auto again = run(std::string(HARVEST_EXE) + " keygen --out " + prefix);
  CHECK(again.exit_code == 1);
  CHECK_THAT(again.output, Catch::Contains("k.secret"));
}
