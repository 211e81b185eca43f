// Builds without CUDA + NCCL: asking for the NCCL backend is a clear configuration error.
#include "core/error.hpp"
#include "worker/comm_group.hpp"

namespace harvest {

bool nccl_available() { return false; }

std::string nccl_version_text() { return "NCCL not built (no CUDA toolkit + NCCL at configure time)"; }

void use_cuda_device(int) {}

std::string new_nccl_unique_id() {
  fail(ErrorKind::Config, "dist.backend = nccl: this harvest was built without CUDA + NCCL");
}

std::unique_ptr<CommGroup> make_nccl_group(const NcclRendezvous&) {
  fail(ErrorKind::Config, "dist.backend = nccl: this harvest was built without CUDA + NCCL");
}

}  // namespace harvest
