// configure_heap: the environment decides; by default freed memory stays in the heap.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <optional>
#include <string>

#include "core/error.hpp"
#include "core/heap.hpp"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

using namespace harvest;

namespace {

// Sets (or, with nullopt, unsets) an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::optional<std::string>& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value)
      ::setenv(name, value->c_str(), 1);
    else
      ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_)
      ::setenv(name_, old_->c_str(), 1);
    else
      ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

}  // namespace

TEST_CASE("configure_heap: a bad HARVEST_HEAP is refused naming it", "[core]") {
  const ScopedEnv heap("HARVEST_HEAP", "keep");
  CHECK_THROWS_WITH(configure_heap(), Catch::Contains("HARVEST_HEAP='keep'") && Catch::Contains("retain"));
  try {
    configure_heap();
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::Config);
  }
}

TEST_CASE("configure_heap: HARVEST_HEAP=system and glibc's own settings keep the C library's way",
          "[core]") {
  SECTION("system") {
    const ScopedEnv heap("HARVEST_HEAP", std::string("system"));
    CHECK_THAT(configure_heap(), Catch::Contains("defaults (HARVEST_HEAP=system)"));
  }
  SECTION("a MALLOC_ variable") {
    const ScopedEnv heap("HARVEST_HEAP", std::nullopt);
    const ScopedEnv pad("MALLOC_TOP_PAD_", std::string("131072"));
    CHECK_THAT(configure_heap(), Catch::Contains("settings from MALLOC_TOP_PAD_"));
  }
  SECTION("GLIBC_TUNABLES with a malloc tunable") {
    const ScopedEnv heap("HARVEST_HEAP", std::string("retain"));
    const ScopedEnv tunables("GLIBC_TUNABLES", std::string("glibc.malloc.trim_threshold=65536"));
    CHECK_THAT(configure_heap(), Catch::Contains("settings from GLIBC_TUNABLES"));
  }
}

// Not under AddressSanitizer: its allocator is not glibc's (configure_heap says so).
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 33) && !defined(__SANITIZE_ADDRESS__)
TEST_CASE("configure_heap: a large block is served from the heap and stays there after free", "[core]") {
  const ScopedEnv heap("HARVEST_HEAP", std::nullopt);
  const ScopedEnv tunables("GLIBC_TUNABLES", std::nullopt);
  CHECK_THAT(configure_heap(), Catch::Contains("kept for reuse"));
  constexpr size_t kBlock = 96u << 20;  // above glibc's largest default mmap threshold (32 MiB)
  const size_t mmapped_before = mallinfo2().hblkhd;
  char* volatile block = static_cast<char*>(std::malloc(kBlock));
  REQUIRE(block != nullptr);
  block[kBlock - 1] = 1;
  CHECK(mallinfo2().hblkhd == mmapped_before);  // not a mapping of its own
  std::free(block);
  CHECK(mallinfo2().fordblks >= kBlock);  // free, kept in the heap for the next step
}
#endif
