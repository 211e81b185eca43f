// Standalone `bench_decode [FILE...]`: the same benchmark as `harvest bench decode`, defaults only.
#include <cstdio>

#include "bench/decode/decode_bench.hpp"
#include "core/error.hpp"

int main(int argc, char** argv) {
  harvest::bench::DecodeBenchOptions o;
  for (int i = 1; i < argc; ++i) o.videos.emplace_back(argv[i]);
  try {
    std::printf("%s\n", harvest::bench::run_decode_bench(o).dump().c_str());
    return 0;
  } catch (const harvest::Error& e) {
    std::fprintf(stderr, "bench_decode: %s\n", e.what());
    return harvest::exit_code_for(e.kind());
  }
}
