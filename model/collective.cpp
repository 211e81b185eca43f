#include "model/collective.hpp"

#include "core/error.hpp"

namespace harvest {

at::Tensor Collective::all_gather_with_grad(const at::Tensor& local) {
  HARVEST_REQUIRE(local.dim() == 2, Usage, "all_gather_with_grad: expects a [B, D] tensor, got ",
                  local.dim(), " dims");
  const int world = world_size();
  if (world == 1) return local;
  const at::Tensor everyone = all_gather(local.detach());
  const int64_t rows = local.size(0);
  HARVEST_ASSERT(everyone.size(0) == rows * world, "all_gather returned ", everyone.size(0),
                 " rows for ", world, " ranks of ", rows);
  // Replace this rank's rows by the autograd-tracked tensor so gradients reach it.
  std::vector<at::Tensor> parts;
  const int64_t begin = static_cast<int64_t>(rank()) * rows;
  if (begin > 0) parts.push_back(everyone.narrow(0, 0, begin));
  parts.push_back(local);
  const int64_t after = everyone.size(0) - begin - rows;
  if (after > 0) parts.push_back(everyone.narrow(0, begin + rows, after));
  return at::cat(parts, 0);
}

namespace {

class SingleWorker final : public Collective {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  at::Tensor all_gather(const at::Tensor& local) override { return local; }
  void all_reduce_sum(at::Tensor&) override {}
  void broadcast(at::Tensor&, int root) override {
    HARVEST_REQUIRE(root == 0, Usage, "broadcast: root ", root, " outside a world of 1");
  }
  void barrier() override {}
};

}  // namespace

std::unique_ptr<Collective> make_single_worker_collective() { return std::make_unique<SingleWorker>(); }

}  // namespace harvest
