#include "core/cpus.hpp"

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

namespace harvest {
namespace {

// The cgroup v2 path of this process ("0::/path" in /proc/self/cgroup), empty when unknown.
std::string cgroup_v2_path() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  return "";
}

// CPUs' worth of quota from cpu.max ("max 100000" or "<quota> <period>"), when limited.
std::optional<double> quota_v2(const std::string& file) {
  std::ifstream in(file);
  std::string quota;
  double period = 0;
  if (!(in >> quota >> period) || quota == "max" || period <= 0) return std::nullopt;
  try {
    const double q = std::stod(quota);
    return q > 0 ? std::optional<double>(q / period) : std::nullopt;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<double> quota_v1() {
  std::ifstream q("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), p("/sys/fs/cgroup/cpu/cpu.cfs_period_us");
  double quota = -1, period = 0;
  if (!(q >> quota) || !(p >> period) || quota <= 0 || period <= 0) return std::nullopt;
  return quota / period;
}

std::optional<double> cpu_quota() {
  const std::string own = cgroup_v2_path();
  if (!own.empty())
    if (auto q = quota_v2("/sys/fs/cgroup" + own + "/cpu.max")) return q;
  if (auto q = quota_v2("/sys/fs/cgroup/cpu.max")) return q;  // a container's namespaced root
  return quota_v1();
}

}  // namespace

int usable_cpus() {
  int cpus = static_cast<int>(std::thread::hardware_concurrency());
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) cpus = CPU_COUNT(&set);
  if (const auto quota = cpu_quota()) cpus = std::min(cpus, static_cast<int>(std::ceil(*quota)));
  return std::max(1, cpus);
}

}  // namespace harvest
