// The launcher with fake peers: restarts a killed child, gives up with a reason when the budget
// is spent, forwards a stop signal and exits 0 when the children stop cleanly.
#include <catch2/catch.hpp>

#include <future>

#include "cluster.hpp"
#include "coordinator/launcher.hpp"

using namespace harvest;
using namespace harvest::test;
using namespace std::chrono_literals;

namespace {

std::vector<coord::ChildSpec> job(Cluster& cluster, int workers) {
  std::vector<coord::ChildSpec> children;
  std::vector<std::string> coordinator{HARVEST_COORDINATOR_NODE, "coordinator"};
  for (const auto& s : cluster.common_sets()) coordinator.push_back(s);
  for (const char* s : {"--set", "dist.world_size=2"}) coordinator.push_back(s);
  children.push_back({"coordinator", coordinator, false, cluster.dir() + "/coordinator.log"});
  for (int i = 0; i < workers; ++i) {
    std::vector<std::string> worker{HARVEST_COORDINATOR_NODE, "peer", "--address", cluster.address(), "--role", "worker"};
    for (const auto& s : cluster.common_sets()) worker.push_back(s);
    for (const char* s : {"--set", "dist.world_size=2"}) worker.push_back(s);
    children.push_back({"worker" + std::to_string(i), worker, true, cluster.dir() + "/worker" + std::to_string(i) + ".log"});
  }
  return children;
}

}  // namespace

TEST_CASE("launcher restarts a killed worker and stops gracefully on SIGTERM", "[coordinator]") {
  Cluster cluster;
  coord::Launcher launcher(job(cluster, 2), coord::LauncherOptions{3, 5000ms, 100ms});
  std::atomic<int> stop{0};
  auto done = std::async(std::launch::async, [&] { return launcher.run(stop); });
  REQUIRE(cluster.wait_for([](auto s) { return workers_running(s, 2, 1); }, 10s));

  const auto victim = launcher.pid_of("worker1");
  REQUIRE(victim);
  ::kill(*victim, SIGKILL);
  // Lost, generation 2 waits for a full group (no dist.min_workers), the restarted worker joins.
  const auto recovered = cluster.wait_for([](auto s) { return s.getGeneration() >= 2 && workers_running(s, 2, s.getGeneration()); }, 10s);
  INFO(cluster.logs());
  CHECK(recovered);
  CHECK(launcher.pid_of("worker1") != victim);

  stop = SIGTERM;
  REQUIRE(done.wait_for(10s) == std::future_status::ready);
  const auto result = done.get();
  CHECK(result.exit_code == 0);
  CHECK(result.restarts == 1);
  CHECK_THAT(result.reason, Catch::Contains("SIGTERM"));
}

TEST_CASE("launcher gives up with a clear reason when the restart budget is spent", "[coordinator]") {
  Cluster cluster;
  auto children = job(cluster, 1);
  children.push_back({"broken", {"/bin/false"}, false, ""});
  coord::Launcher launcher(std::move(children), coord::LauncherOptions{2, 5000ms, 50ms});
  std::atomic<int> stop{0};
  const auto result = launcher.run(stop);
  CHECK(result.exit_code == 1);
  CHECK(result.restarts == 2);
  CHECK_THAT(result.reason, Catch::Contains("broken failed (exit 1)") && Catch::Contains("coordinator.max_restarts = 2"));
  CHECK_FALSE(launcher.pid_of("coordinator"));  // everything was stopped
}

TEST_CASE("launcher: bad child specs are usage errors", "[coordinator]") {
  CHECK_THROWS_WITH(coord::Launcher({}, {}), Catch::Contains("nothing to launch"));
  CHECK_THROWS_WITH(coord::Launcher({{"w", {}, true, ""}}, {}), Catch::Contains("'w' has no command"));
  CHECK(coord::describe_exit(128 + SIGKILL) == "killed by SIGKILL");
  CHECK(coord::describe_exit(3) == "exit 3");
}
