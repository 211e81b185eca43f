# -DHARVEST_HEADER_DEPS=DIR: TOML++, spdlog, fmt, nlohmann-json and Catch2 used header-only from
# one include folder instead of find_package. For machines that have LibTorch and a compiler but
# none of these packages (the lent GPU machines): `scripts/gpu-check.sh --prepare` copies Debian's
# headers into .gpu-deps/include and Catch2's CMake scripts into .gpu-deps/cmake, and that folder
# travels with the source tree (docs/gpu-check.md).
#
# Defines the imported targets the rest of the build links (tomlplusplus::tomlplusplus,
# spdlog::spdlog, nlohmann_json::nlohmann_json, Catch2::Catch2) and catch_discover_tests().
# Included from HarvestDependencies.cmake in place of their find_package calls.

get_filename_component(_harvest_deps "${HARVEST_HEADER_DEPS}" ABSOLUTE)
set(_harvest_deps_cmake "${_harvest_deps}/../cmake")
get_filename_component(_harvest_deps_cmake "${_harvest_deps_cmake}" ABSOLUTE)

# Every header the build includes, checked here so a missing copy is one clear configure error
# rather than a compile error minutes later on a machine whose time is counted.
set(_harvest_deps_missing)
foreach(header toml++/toml.h spdlog/spdlog.h spdlog/spdlog-inl.h spdlog/sinks/stdout_color_sinks-inl.h
               fmt/core.h fmt/format-inl.h nlohmann/json.hpp catch2/catch.hpp)
  if(NOT EXISTS "${_harvest_deps}/${header}")
    list(APPEND _harvest_deps_missing ${header})
  endif()
endforeach()
if(_harvest_deps_missing)
  string(REPLACE ";" ", " _harvest_deps_missing "${_harvest_deps_missing}")
  message(FATAL_ERROR "HARVEST_HEADER_DEPS=${_harvest_deps} lacks ${_harvest_deps_missing}: run "
                      "`scripts/gpu-check.sh --prepare` on a machine with scripts/setup.sh's packages and "
                      "carry .gpu-deps/ (docs/gpu-check.md)")
endif()

# harvest_header_target(<name> <defines...>): an imported interface target over the folder.
# Imported targets' include folders are SYSTEM includes, so -Werror never sees their warnings.
function(harvest_header_target name)
  add_library(${name} INTERFACE IMPORTED)
  set_target_properties(${name} PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${_harvest_deps}"
    INTERFACE_COMPILE_DEFINITIONS "${ARGN}")
endfunction()

# TOML++ compiles its parser into every TU that includes it (no libtomlplusplus).
harvest_header_target(tomlplusplus::tomlplusplus TOML_HEADER_ONLY=1)
# spdlog's *-inl.h and fmt's format-inl.h are compiled inline (no libspdlog, no libfmt). Debian's
# spdlog is configured for an external fmt (tweakme.h), the carried fmt 9 it was built with.
harvest_header_target(spdlog::spdlog SPDLOG_HEADER_ONLY SPDLOG_FMT_EXTERNAL FMT_HEADER_ONLY)
harvest_header_target(nlohmann_json::nlohmann_json)
harvest_header_target(Catch2::Catch2)

# The PyTorch wheel ships fmt 12 headers in its include folder, which spdlog 1.10 cannot use.
# HarvestDependencies.cmake puts a folder linking to HARVEST_SYSTEM_FMT_INCLUDE/fmt in front of
# LibTorch's include folders (harvest_torch_iface); here that is the carried fmt, since the
# machine has no system fmt for its find_path to find.
set(HARVEST_SYSTEM_FMT_INCLUDE "${_harvest_deps}" CACHE PATH
    "Folder holding the fmt/ that spdlog was built against (goes before LibTorch's fmt)" FORCE)

# Test discovery: Catch2's own Catch.cmake when carried (per-case ctest entries, as in the main
# build); without it one ctest entry per test binary, so ctest still runs every case.
if(EXISTS "${_harvest_deps_cmake}/Catch.cmake" AND EXISTS "${_harvest_deps_cmake}/CatchAddTests.cmake")
  list(APPEND CMAKE_MODULE_PATH "${_harvest_deps_cmake}")
  include(Catch)
else()
  message(STATUS "HARVEST_HEADER_DEPS: no Catch.cmake in ${_harvest_deps_cmake}; each test binary is one ctest entry")
  # Same signature as Catch.cmake's; TEST_PREFIX names the entry, PROPERTIES are applied to it.
  function(catch_discover_tests target)
    cmake_parse_arguments(D "" "TEST_PREFIX;TEST_SUFFIX;WORKING_DIRECTORY;REPORTER;OUTPUT_DIR;OUTPUT_PREFIX;OUTPUT_SUFFIX"
                          "TEST_SPEC;EXTRA_ARGS;PROPERTIES" ${ARGN})
    set(test_name "${D_TEST_PREFIX}${target}${D_TEST_SUFFIX}")
    add_test(NAME "${test_name}" COMMAND ${target} ${D_TEST_SPEC} ${D_EXTRA_ARGS})
    if(D_PROPERTIES)
      set_tests_properties("${test_name}" PROPERTIES ${D_PROPERTIES})
    endif()
  endfunction()
endif()

message(STATUS "header-only dependencies from ${_harvest_deps}")
