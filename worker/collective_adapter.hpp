// The model's Collective (what losses need) over the worker's CommGroup, with every call bounded
// by the configured collective deadline (dist.timeout_s).
#pragma once

#include "model/collective.hpp"
#include "worker/comm_group.hpp"

namespace harvest {

class GroupCollective final : public Collective {
 public:
  GroupCollective(CommGroup& group, double timeout_s) : group_(group), timeout_s_(timeout_s) {}
  int rank() const override { return group_.rank(); }
  int world_size() const override { return group_.size(); }
  at::Tensor all_gather(const at::Tensor& local) override {
    return group_.all_gather(local, deadline());
  }
  void all_reduce_sum(at::Tensor& tensor) override { group_.all_reduce_sum(tensor, deadline()); }
  void broadcast(at::Tensor& tensor, int root) override { group_.broadcast(tensor, root, deadline()); }
  void barrier() override { group_.barrier(deadline()); }

 private:
  Deadline deadline() const { return Deadline::after_seconds(timeout_s_); }
  CommGroup& group_;
  double timeout_s_;
};

}  // namespace harvest
