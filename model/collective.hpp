// Collective: what the model's losses need from the data-parallel group. model/ knows nothing of
// processes or NCCL; the worker implements this over NCCL / Gloo, and make_single_worker_collective()
// is the one-worker (in-process) case. Every call is collective: all ranks call it in the same order.
#pragma once

#include <torch/torch.h>

#include <memory>

namespace harvest {

class Collective {
 public:
  virtual ~Collective() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;

  // Rank-ordered concatenation along dim 0 of every rank's `local` (same shape on every rank).
  // No autograd: the result is a plain tensor.
  virtual at::Tensor all_gather(const at::Tensor& local) = 0;
  // In-place sum over ranks.
  virtual void all_reduce_sum(at::Tensor& tensor) = 0;
  // In-place: every rank ends with `root`'s tensor.
  virtual void broadcast(at::Tensor& tensor, int root) = 0;
  virtual void barrier() = 0;

  // all_gather of a [B, D] tensor whose result carries gradients back into `local` only: the
  // other ranks' rows are constants here (each rank back-propagates through its own slice, and
  // averaging gradients across ranks then gives the single-worker gradient; see losses.hpp).
  at::Tensor all_gather_with_grad(const at::Tensor& local);
};

// World size 1, rank 0: gather/reduce/broadcast are the identity.
std::unique_ptr<Collective> make_single_worker_collective();

}  // namespace harvest
