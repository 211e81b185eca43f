#include <catch2/catch.hpp>

#include <sched.h>

#include <thread>

#include "core/cpus.hpp"

using namespace harvest;

TEST_CASE("usable_cpus follows the affinity mask", "[core]") {
  const int all = usable_cpus();
  CHECK(all >= 1);
  CHECK(all <= static_cast<int>(std::thread::hardware_concurrency()));
  // A thread pinned to one core (as taskset or a cpuset would pin a process) sees one.
  int pinned = 0;
  bool set_ok = false;
  std::thread([&] {
    cpu_set_t one;
    CPU_ZERO(&one);
    cpu_set_t current;
    sched_getaffinity(0, sizeof current, &current);
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &current)) {
        CPU_SET(c, &one);
        break;
      }
    set_ok = sched_setaffinity(0, sizeof one, &one) == 0;
    pinned = usable_cpus();
  }).join();
  REQUIRE(set_ok);
  CHECK(pinned == 1);
}
