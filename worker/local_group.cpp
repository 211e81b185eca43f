#include "core/error.hpp"
#include "worker/comm_group.hpp"

namespace harvest {
namespace {

class DonePending final : public PendingOp {
 public:
  void wait(const Deadline&) override {}
};

class LocalGroup final : public CommGroup {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "inproc"; }
  std::unique_ptr<PendingOp> all_reduce_sum_async(at::Tensor&) override {
    HARVEST_REQUIRE(!aborted_, Runtime, "inproc group: all_reduce after abort");
    return std::make_unique<DonePending>();
  }
  at::Tensor all_gather(const at::Tensor& local, const Deadline&) override { return local; }
  void broadcast(at::Tensor&, int root, const Deadline&) override {
    HARVEST_ASSERT(root == 0, "inproc group has one rank, broadcast root ", root);
  }
  void barrier(const Deadline&) override {}
  void abort() override { aborted_ = true; }

 private:
  bool aborted_ = false;
};

}  // namespace

std::unique_ptr<CommGroup> make_local_group() { return std::make_unique<LocalGroup>(); }

}  // namespace harvest
