// How many CPUs this process may really use: the cores in its affinity mask (taskset, Slurm's
// and Kubernetes' cpusets), capped by a CPU quota of its cgroup (Kubernetes' CPU limits, Docker's
// --cpus; cgroup v2 cpu.max or v1 cpu.cfs_quota_us), rounded up, at least 1.
// std::thread::hardware_concurrency() counts every core of the machine instead, which
// oversubscribes a container given a few of them.
#pragma once

namespace harvest {

int usable_cpus();

}  // namespace harvest
