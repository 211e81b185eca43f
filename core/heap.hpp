// The C library's heap policy for a harvest process. A training step allocates and frees the
// same large tensors every step; glibc's defaults hand blocks above a (dynamic, at most 32 MiB)
// mmap threshold back to the kernel on free and trim the heap's top, so the next step
// page-faults freshly zeroed pages again (about 12 % of a CPU demo step, docs/operations.md
// "Memory"). configure_heap() keeps freed memory in the heap for reuse instead: mmap threshold
// and trim threshold 1 GiB, top pad 64 MiB. A process's resident memory then stays at its peak.
#pragma once

#include <string>

namespace harvest {

// Applies the policy unless the environment says otherwise: HARVEST_HEAP=system keeps the C
// library's defaults, as do glibc's own settings (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_,
// MALLOC_TOP_PAD_, MALLOC_MMAP_MAX_, or glibc.malloc.* in GLIBC_TUNABLES), which then win.
// HARVEST_HEAP=retain (or unset) applies it. Any other value: Error(Config) naming the variable.
// Returns one line saying what it did, for the log.
std::string configure_heap();

}  // namespace harvest
