#include <catch2/catch.hpp>

#include <fcntl.h>

#include "core/check_sys.hpp"
#include "core/error.hpp"
#include "core/time.hpp"

using namespace harvest;

TEST_CASE("error kinds map to exit codes", "[core][errors]") {
  CHECK(exit_code_for(ErrorKind::Usage) == 2);
  CHECK(exit_code_for(ErrorKind::Config) == 2);
  CHECK(exit_code_for(ErrorKind::Runtime) == 1);
  CHECK(exit_code_for(ErrorKind::Internal) == 1);
}

TEST_CASE("HARVEST_REQUIRE carries kind and formatted values", "[core][errors]") {
  const int got = 3;
  try {
    HARVEST_REQUIRE(got == 4, Runtime, "peer ", "worker-1", ": expected 4 parts, got ", got);
    FAIL("no throw");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::Runtime);
    CHECK(std::string(e.what()) == "peer worker-1: expected 4 parts, got 3");
  }
}

TEST_CASE("HARVEST_ASSERT reports file, line and expression", "[core][errors]") {
  try {
    HARVEST_ASSERT(1 + 1 == 3, "math is ", "broken");
    FAIL("no throw");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::Internal);
    CHECK_THAT(e.what(), Catch::Contains("test_errors.cpp:"));
    CHECK_THAT(e.what(), Catch::Contains("`1 + 1 == 3` failed: math is broken"));
  }
}

TEST_CASE("check_sys names the call, object and errno text", "[core][errors]") {
  try {
    check_sys(::open("/nonexistent/file.h5", O_RDONLY), "open", "/nonexistent/file.h5");
    FAIL("no throw");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::Runtime);
    CHECK_THAT(e.what(), Catch::Contains("open(/nonexistent/file.h5) failed: No such file or directory (errno 2)"));
  }
  CHECK(check_sys(5, "read", "x") == 5);
}

TEST_CASE("deadline counts down and clamps at zero", "[core][time]") {
  Deadline d(std::chrono::milliseconds(0));
  CHECK(d.expired());
  CHECK(d.remaining_ms() == 0);
  Deadline later = Deadline::after_seconds(60);
  CHECK_FALSE(later.expired());
  CHECK(later.remaining_ms() > 50000);
}
