// CUDA runtime and NCCL return-code wrappers (header-only: only the NCCL backend includes it).
#pragma once

#include <cuda_runtime.h>
#include <nccl.h>

#include <string>

#include "core/error.hpp"

namespace harvest {

inline void check_cuda(cudaError_t rc, const char* call, const std::string& what) {
  if (rc != cudaSuccess)
    fail(ErrorKind::Runtime, call, "(", what, ") failed: ", cudaGetErrorString(rc), " (", static_cast<int>(rc), ")");
}

// ncclInProgress is not an error for non-blocking communicators: callers poll for completion.
inline ncclResult_t check_nccl(ncclResult_t rc, const char* call, const std::string& what) {
  if (rc != ncclSuccess && rc != ncclInProgress)
    fail(ErrorKind::Runtime, call, "(", what, ") failed: ", ncclGetErrorString(rc), " (", static_cast<int>(rc), ")");
  return rc;
}

}  // namespace harvest
