# Every third-party library harvest uses, found once, exposed as imported targets.
find_package(PkgConfig REQUIRED)

# --- header-only libraries every build needs (core) ---------------------------------
find_package(tomlplusplus 3 REQUIRED)
find_package(spdlog REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(Catch2 2 REQUIRED)
include(Catch)
find_package(Threads REQUIRED)

# --- LibTorch ------------------------------------------------------------------------
set(HARVEST_HAVE_TORCH OFF)
if(NOT HARVEST_SANITIZE)
  find_package(Torch REQUIRED)
  set(HARVEST_HAVE_TORCH ON)
  set(HARVEST_TORCH_VERSION "${Torch_VERSION}")
  add_library(harvest_torch_iface INTERFACE)
  target_link_libraries(harvest_torch_iface INTERFACE ${TORCH_LIBRARIES})
  # TorchConfig puts -D_GLIBCXX_USE_CXX11_ABI into TORCH_CXX_FLAGS; apply them as options.
  separate_arguments(_harvest_torch_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
  target_compile_options(harvest_torch_iface INTERFACE ${_harvest_torch_flags})
  target_include_directories(harvest_torch_iface SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
  add_library(harvest::torch ALIAS harvest_torch_iface)
endif()

# --- CUDA + NCCL (compiled and linked when present; run only on GPU machines) ---------
set(HARVEST_HAVE_NCCL OFF)
if(HARVEST_WITH_CUDA AND NOT HARVEST_SANITIZE)
  find_package(CUDAToolkit QUIET)
  if(CUDAToolkit_FOUND)
    find_path(HARVEST_NCCL_INCLUDE nccl.h
      HINTS ${CUDAToolkit_INCLUDE_DIRS} ${CUDAToolkit_LIBRARY_ROOT}/include $ENV{NCCL_HOME}/include
            ${HARVEST_NCCL_ROOT}/include)
    find_library(HARVEST_NCCL_LIBRARY nccl
      HINTS ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}/lib $ENV{NCCL_HOME}/lib
            ${HARVEST_NCCL_ROOT}/lib)
    if(HARVEST_NCCL_INCLUDE AND HARVEST_NCCL_LIBRARY)
      set(HARVEST_HAVE_NCCL ON)
      add_library(harvest_nccl_iface INTERFACE)
      target_include_directories(harvest_nccl_iface SYSTEM INTERFACE ${HARVEST_NCCL_INCLUDE})
      target_link_libraries(harvest_nccl_iface INTERFACE ${HARVEST_NCCL_LIBRARY} CUDA::cudart)
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
