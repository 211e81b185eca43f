#include "core/heap.hpp"

#include <cstdlib>
#include <string_view>

#include "core/error.hpp"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

// Under AddressSanitizer malloc is the sanitizer's: glibc's settings do not apply (mallopt fails).
#if defined(__SANITIZE_ADDRESS__)
#define HARVEST_SANITIZED_HEAP 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HARVEST_SANITIZED_HEAP 1
#endif
#endif

namespace harvest {

namespace {

std::string_view env(const char* name) {
  const char* value = std::getenv(name);
  return value ? std::string_view(value) : std::string_view();
}

// The glibc setting the user made, if any: theirs wins over harvest's.
std::string glibc_setting() {
  for (const char* name : {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_"})
    if (std::getenv(name)) return name;
  if (env("GLIBC_TUNABLES").find("glibc.malloc.") != std::string_view::npos) return "GLIBC_TUNABLES";
  return "";
}

}  // namespace

std::string configure_heap() {
  const std::string_view wanted = env("HARVEST_HEAP");
  HARVEST_REQUIRE(wanted.empty() || wanted == "retain" || wanted == "system", Config,
                  "HARVEST_HEAP='", std::string(wanted), "' (environment): expected 'retain' or 'system'");
  if (wanted == "system") return "heap: the C library's defaults (HARVEST_HEAP=system)";
  const std::string theirs = glibc_setting();
  if (!theirs.empty()) return "heap: the C library's settings from " + theirs;
#if defined(HARVEST_SANITIZED_HEAP)
  return "heap: the sanitizer's allocator (no C library settings apply)";
#elif defined(__GLIBC__)
  constexpr int kThreshold = 1 << 30;
  constexpr int kTopPad = 64 << 20;
  const bool applied = mallopt(M_MMAP_THRESHOLD, kThreshold) == 1 && mallopt(M_TRIM_THRESHOLD, kThreshold) == 1 &&
                       mallopt(M_TOP_PAD, kTopPad) == 1;
  return applied ? "heap: freed memory kept for reuse (mmap and trim thresholds 1 GiB, top pad 64 MiB)"
                 : "heap: the C library refused the retain settings; its defaults stay";
#else
  return "heap: the C library's defaults (not glibc)";
#endif
}

}  // namespace harvest
