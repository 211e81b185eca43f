// bench_checkpoint [SIZE_MB [REPS [DIR [h5py]]]]: the same benchmark as `harvest bench checkpoint`,
// without the CLI's LibTorch dependency (for the sanitizer build and quick runs).
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "bench/checkpoint/checkpoint_bench.hpp"

int main(int argc, char** argv) {
  harvest::bench::CheckpointBenchOptions options;
  if (argc > 1) options.size_mb = std::atoll(argv[1]);
  if (argc > 2) options.reps = std::atoll(argv[2]);
  if (argc > 3) options.dir = argv[3];
  if (argc > 4) options.h5py = std::string(argv[4]) == "h5py";
  try {
    std::printf("%s\n", harvest::bench::run_checkpoint_bench(options).dump().c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_checkpoint: %s\n", e.what());
    return 1;
  }
}
