# Every third-party library harvest uses, found once, exposed as imported targets.
# Not REQUIRED: model-only builds need none of the pkg-config modules (the full build's
# pkg_check_modules(... REQUIRED) below still stop clearly without it).
find_package(PkgConfig)

# --- header-only libraries every build needs (core) ---------------------------------
if(HARVEST_HEADER_DEPS)  # header-only copies in one folder (cmake/HarvestHeaderDeps.cmake, docs/gpu-check.md)
  include(HarvestHeaderDeps)
else()
  find_package(tomlplusplus 3 REQUIRED)
  find_package(spdlog REQUIRED)
  find_package(nlohmann_json 3 REQUIRED)
  find_package(Catch2 2 REQUIRED)
  include(Catch)
endif()
find_package(Threads REQUIRED)

# --- the project's Python environment ------------------------------------------------
# scripts/setup.sh creates .venv with PyTorch and the references tests and bench/ compare
# against (transformers, PyAV, torchcodec, h5py, ...). The product never runs Python; tests do.
set(HARVEST_PYTHON "${PROJECT_SOURCE_DIR}/.venv/bin/python3" CACHE FILEPATH
    "Python with torch and the test references (scripts/setup.sh makes .venv)")
if(NOT EXISTS "${HARVEST_PYTHON}")
  message(WARNING "HARVEST_PYTHON=${HARVEST_PYTHON} does not exist: run scripts/setup.sh (tests that compare "
                  "against Python references will fail)")
endif()

# --- LibTorch ------------------------------------------------------------------------
# One LibTorch: PyTorch's wheel (found through HARVEST_PYTHON's torch unless Torch_DIR or
# CMAKE_PREFIX_PATH already points at one). The minimum version lives here and nowhere else.
set(HARVEST_TORCH_MIN_VERSION 2.7)
set(HARVEST_HAVE_TORCH OFF)
if(NOT HARVEST_SANITIZE)
  if(NOT Torch_DIR AND EXISTS "${HARVEST_PYTHON}")
    execute_process(
      COMMAND "${HARVEST_PYTHON}" -c "import torch.utils; print(torch.utils.cmake_prefix_path)"
      OUTPUT_VARIABLE _harvest_torch_prefix RESULT_VARIABLE _harvest_torch_rc
      OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    if(_harvest_torch_rc EQUAL 0)
      list(APPEND CMAKE_PREFIX_PATH "${_harvest_torch_prefix}")
    endif()
  endif()
  find_package(Torch QUIET)
  if(NOT Torch_FOUND)
    message(FATAL_ERROR "LibTorch not found: run scripts/setup.sh (it installs PyTorch into .venv), or pass "
                        "-DCMAKE_PREFIX_PATH=\"$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')\" "
                        "(docs/build.md)")
  endif()
  if(Torch_VERSION VERSION_LESS HARVEST_TORCH_MIN_VERSION)
    message(FATAL_ERROR "LibTorch ${Torch_VERSION} at ${Torch_DIR} is older than ${HARVEST_TORCH_MIN_VERSION}, the "
                        "oldest harvest builds against (fused attention, per-device autocast, the C++11 ABI wheels)")
  endif()
  if(TORCH_CXX_FLAGS MATCHES "_GLIBCXX_USE_CXX11_ABI=0")
    message(FATAL_ERROR "LibTorch at ${Torch_DIR} uses the pre-C++11 ABI; FFmpeg, HDF5, ZeroMQ and the other "
                        "system libraries need the C++11 ABI (PyTorch's wheels from 2.7 on)")
  endif()
  set(HARVEST_HAVE_TORCH ON)
  set(HARVEST_TORCH_VERSION "${Torch_VERSION}")
  add_library(harvest_torch_iface INTERFACE)
  target_link_libraries(harvest_torch_iface INTERFACE ${TORCH_LIBRARIES})
  # TorchConfig puts -D_GLIBCXX_USE_CXX11_ABI into TORCH_CXX_FLAGS; apply them as options.
  separate_arguments(_harvest_torch_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
  target_compile_options(harvest_torch_iface INTERFACE ${_harvest_torch_flags})
  # The wheel's include folder carries fmt 12 headers of its own; spdlog (Debian's 1.10) was built
  # against the system fmt 9 and breaks on fmt 12. A folder holding only a link to the system fmt
  # goes first, so every harvest TU sees one fmt (LibTorch's compiled fmt lives in fmt::v12, a
  # namespace of its own, so the two never meet at link time).
  find_path(HARVEST_SYSTEM_FMT_INCLUDE fmt/core.h NO_CMAKE_PATH NO_CMAKE_ENVIRONMENT_PATH)
  set(_harvest_fmt_shim "${CMAKE_BINARY_DIR}/system-fmt")
  file(MAKE_DIRECTORY "${_harvest_fmt_shim}")
  file(CREATE_LINK "${HARVEST_SYSTEM_FMT_INCLUDE}/fmt" "${_harvest_fmt_shim}/fmt" SYMBOLIC)
  target_include_directories(harvest_torch_iface SYSTEM INTERFACE "${_harvest_fmt_shim}" ${TORCH_INCLUDE_DIRS})
  # The wheel is built with a newer GCC whose libstdc++ additions (std::filesystem, <chrono> time
  # zones, ...) are linked into libtorch.so and exported from it. Executables list libtorch
  # before libstdc++, so the dynamic linker bound harvest's own std::filesystem calls to
  # LibTorch's copies, which crashed (remove_all jumped to address 0). Naming libstdc++ first puts
  # it ahead in symbol lookup; the link option lands before every object and library.
  target_link_options(harvest_torch_iface INTERFACE "LINKER:--push-state,--no-as-needed" "-lstdc++"
                      "LINKER:--pop-state")
  add_library(harvest::torch ALIAS harvest_torch_iface)
  # Where the wheel's CUDA libraries live (site-packages/nvidia/...): NCCL is taken from there.
  get_filename_component(HARVEST_TORCH_SITE "${TORCH_INSTALL_PREFIX}/.." ABSOLUTE)
endif()

# --- CUDA + NCCL (compiled and linked when present; run only on GPU machines) ---------
# NCCL is the wheel's (nvidia-nccl-cu13, the library torch's own ProcessGroupNCCL loads), so a
# process holds one NCCL; HARVEST_NCCL_ROOT or $NCCL_HOME override it, the toolkit's is the last
# resort (a LibTorch from elsewhere).
set(HARVEST_HAVE_NCCL OFF)
if(HARVEST_WITH_CUDA AND NOT HARVEST_SANITIZE)
  find_package(CUDAToolkit QUIET)
  if(CUDAToolkit_FOUND)
    set(_harvest_nccl_roots ${HARVEST_NCCL_ROOT} $ENV{NCCL_HOME} ${HARVEST_TORCH_SITE}/nvidia/nccl)
    set(_harvest_nccl_fallback ${CUDAToolkit_INCLUDE_DIRS} ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT})
    set(_harvest_nccl_inc)
    set(_harvest_nccl_lib)
    foreach(root IN LISTS _harvest_nccl_roots)
      list(APPEND _harvest_nccl_inc ${root}/include)
      list(APPEND _harvest_nccl_lib ${root}/lib)
    endforeach()
    find_path(HARVEST_NCCL_INCLUDE nccl.h HINTS ${_harvest_nccl_inc} ${_harvest_nccl_fallback} NO_DEFAULT_PATH)
    # The wheel ships libnccl.so.2 without the unversioned link.
    find_library(HARVEST_NCCL_LIBRARY NAMES nccl libnccl.so.2 NAMES_PER_DIR
      HINTS ${_harvest_nccl_lib} ${_harvest_nccl_fallback} ${CUDAToolkit_LIBRARY_ROOT}/lib NO_DEFAULT_PATH)
    if(HARVEST_NCCL_INCLUDE AND HARVEST_NCCL_LIBRARY)
      set(HARVEST_HAVE_NCCL ON)
      add_library(harvest_nccl_iface INTERFACE)
      target_include_directories(harvest_nccl_iface SYSTEM INTERFACE ${HARVEST_NCCL_INCLUDE})
      # The wheel's CUDA runtime when there is one (the copy LibTorch loads), so a process holds one.
      find_library(HARVEST_CUDART_LIBRARY NAMES libcudart.so.13 libcudart.so.12 cudart
        HINTS ${HARVEST_TORCH_SITE}/nvidia/cu13/lib ${HARVEST_TORCH_SITE}/nvidia/cuda_runtime/lib NO_DEFAULT_PATH)
      if(NOT HARVEST_CUDART_LIBRARY)
        set(HARVEST_CUDART_LIBRARY CUDA::cudart)
      endif()
      target_link_libraries(harvest_nccl_iface INTERFACE ${HARVEST_NCCL_LIBRARY} ${HARVEST_CUDART_LIBRARY})
      add_library(harvest::nccl ALIAS harvest_nccl_iface)
      message(STATUS "NCCL: ${HARVEST_NCCL_LIBRARY} (CUDA ${CUDAToolkit_VERSION})")
    endif()
  endif()
endif()

if(HARVEST_MODEL_ONLY)
  return()
endif()

# --- the rest of the system -----------------------------------------------------------
find_package(CLI11 2 REQUIRED)
find_package(CapnProto REQUIRED)
find_package(HDF5 REQUIRED COMPONENTS C)
pkg_check_modules(ZMQ REQUIRED IMPORTED_TARGET libzmq)
pkg_check_modules(FFMPEG REQUIRED IMPORTED_TARGET libavformat libavcodec libswscale libavutil)
pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET libxxhash)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
pkg_check_modules(SODIUM REQUIRED IMPORTED_TARGET libsodium)
