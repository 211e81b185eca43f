// CommGroup: the data-parallel group a worker belongs to. Real libraries underneath —
// NCCL on GPUs, Gloo (LibTorch's c10d) on CPUs — and a local group for one worker.
// Every blocking call has a deadline; abort() makes in-flight and later calls fail at once,
// so a worker told by the coordinator that a peer died never sits in a collective timeout.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "core/time.hpp"

namespace harvest {

// An all-reduce in flight; wait() blocks until done, the deadline passes (throws Runtime naming
// the backend and operation) or the group is aborted (throws Runtime "aborted").
class PendingOp {
 public:
  virtual ~PendingOp() = default;
  virtual void wait(const Deadline& deadline) = 0;
};

class CommGroup {
 public:
  virtual ~CommGroup() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;

  // In-place sum over all ranks, started now, finished by PendingOp::wait().
  virtual std::unique_ptr<PendingOp> all_reduce_sum_async(at::Tensor& tensor) = 0;
  // Rank-ordered concatenation along dim 0 of every rank's `local` (same shape everywhere).
  virtual at::Tensor all_gather(const at::Tensor& local, const Deadline& deadline) = 0;
  virtual void broadcast(at::Tensor& tensor, int root, const Deadline& deadline) = 0;
  virtual void barrier(const Deadline& deadline) = 0;
  // Thread-safe; idempotent. In-flight and future operations fail immediately.
  virtual void abort() = 0;

  void all_reduce_sum(at::Tensor& tensor, const Deadline& deadline) {
    all_reduce_sum_async(tensor)->wait(deadline);
  }
};

// One worker: every operation is the identity.
std::unique_ptr<CommGroup> make_local_group();

// Where a Gloo group meets: a c10d TCPStore served by rank 0 at host:port; `generation` prefixes
// every key so a re-rendezvous after a failure never sees the previous group's keys.
struct GlooRendezvous {
  std::string host = "127.0.0.1";
  int port = 29600;
  int rank = 0;
  int world_size = 1;
  int64_t generation = 0;
  double timeout_s = 60.0;
  std::string interface_host = "127.0.0.1";  // address this worker's Gloo device binds
};

std::unique_ptr<CommGroup> make_gloo_group(const GlooRendezvous& rendezvous);

// Rank 0's store, served before the group forms so that its address can be handed out first
// (`harvest worker` offers it to the coordinator, which passes it to every rank). Port 0 binds
// an ephemeral port; port() tells which.
class GlooStore {
 public:
  virtual ~GlooStore() = default;
  virtual int port() const = 0;
};
std::shared_ptr<GlooStore> serve_gloo_store(const std::string& host, int port, int world_size,
                                            double timeout_s);
// Rank 0 passes the store it serves (rendezvous.port is then ignored); other ranks pass nullptr.
std::unique_ptr<CommGroup> make_gloo_group(const GlooRendezvous& rendezvous,
                                           const std::shared_ptr<GlooStore>& served);

// NCCL: rank 0 creates the unique id (new_nccl_unique_id(), which starts NCCL's bootstrap
// listener in that process), sends it to the coordinator, which hands it to every rank of the
// generation. Only in builds with CUDA + NCCL (HARVEST_HAVE_NCCL).
struct NcclRendezvous {
  std::string unique_id;  // the 128-byte ncclUniqueId, as bytes
  int rank = 0;
  int world_size = 1;
  int64_t generation = 0;
  int device = 0;  // CUDA device index this worker owns
};

bool nccl_available();  // compiled in (not: a GPU is present)
// "NCCL 2.28.9 (loaded 2.28.9), CUDA runtime 13.0", or why there is none: for `harvest version`.
std::string nccl_version_text();
// Makes CUDA device `index` the calling thread's current device (cudaSetDevice), so the legacy
// default stream the NCCL collectives order after is that device's. A no-op in builds without
// CUDA + NCCL, where the LibTorch tensors' own devices are all that matters.
void use_cuda_device(int index);
std::string new_nccl_unique_id();
std::unique_ptr<CommGroup> make_nccl_group(const NcclRendezvous& rendezvous);

}  // namespace harvest
