// CommGroup over LibTorch's c10d::ProcessGroupGloo with a TCPStore rendezvous.
#include <atomic>
#include <thread>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "core/error.hpp"
#include "worker/comm_group.hpp"

namespace harvest {
namespace {

using WorkPtr = c10::intrusive_ptr<c10d::Work>;

// Polls Work::isCompleted() instead of blocking inside Gloo, so abort() and the deadline are
// honoured within a millisecond whatever the peers do.
// A missed deadline also marks the group aborted: its Gloo threads may never come back.
void wait_work(const WorkPtr& work, const Deadline& deadline, std::atomic<bool>& aborted,
               const char* op, int rank) {
  int spins = 0;
  while (!work->isCompleted()) {
    HARVEST_REQUIRE(!aborted.load(), Runtime, "gloo rank ", rank, ": ", op, " aborted");
    if (deadline.expired()) {
      aborted = true;
      fail(ErrorKind::Runtime, "gloo rank ", rank, ": ", op,
           " missed its deadline (a peer is slow, hung or gone)");
    }
    if (++spins < 200)
      std::this_thread::yield();
    else
      std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  try {
    work->wait();  // completed: rethrows the operation's own error, if any
  } catch (const std::exception& e) {
    fail(ErrorKind::Runtime, "gloo rank ", rank, ": ", op, " failed: ", e.what());
  }
}

class GlooPending final : public PendingOp {
 public:
  GlooPending(WorkPtr work, std::atomic<bool>& aborted, int rank)
      : work_(std::move(work)), aborted_(aborted), rank_(rank) {}
  void wait(const Deadline& deadline) override {
    wait_work(work_, deadline, aborted_, "all_reduce", rank_);
  }

 private:
  WorkPtr work_;
  std::atomic<bool>& aborted_;
  int rank_;
};

c10::intrusive_ptr<c10d::TCPStore> open_store(const std::string& host, int port, bool server,
                                              int world_size, double timeout_s) {
  c10d::TCPStoreOptions options;
  options.port = static_cast<uint16_t>(port);
  options.isServer = server;
  options.numWorkers = world_size;
  options.waitWorkers = false;
  options.timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  return c10::make_intrusive<c10d::TCPStore>(host, options);
}

class ServedStore final : public GlooStore {
 public:
  explicit ServedStore(c10::intrusive_ptr<c10d::TCPStore> store) : store(std::move(store)) {}
  int port() const override { return store->getPort(); }
  c10::intrusive_ptr<c10d::TCPStore> store;
};

class GlooGroup final : public CommGroup {
 public:
  GlooGroup(const GlooRendezvous& r, const std::shared_ptr<GlooStore>& served)
      : rank_(r.rank), size_(r.world_size) {
    const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(r.timeout_s * 1000));
    try {
      c10::intrusive_ptr<c10d::TCPStore> store;
      if (served)
        store = dynamic_cast<ServedStore&>(*served).store;
      else
        store = open_store(r.host, r.port, r.rank == 0, r.world_size, r.timeout_s);
      auto scoped =
          c10::make_intrusive<c10d::PrefixStore>("gen" + std::to_string(r.generation), store);
      auto gloo_options = c10d::ProcessGroupGloo::Options::create();
      gloo_options->devices.push_back(
          c10d::ProcessGroupGloo::createDeviceForHostname(r.interface_host));
      gloo_options->timeout = timeout;
      pg_ = c10::make_intrusive<c10d::ProcessGroupGloo>(scoped, r.rank, r.world_size, gloo_options);
    } catch (const std::exception& e) {
      fail(ErrorKind::Runtime, "gloo rendezvous at ", r.host, ":", r.port, " (generation ",
           r.generation, ", rank ", r.rank, " of ", r.world_size, ") failed: ", e.what());
    }
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "gloo"; }

  std::unique_ptr<PendingOp> all_reduce_sum_async(at::Tensor& tensor) override {
    check_alive("all_reduce");
    std::vector<at::Tensor> tensors{tensor};
    return std::make_unique<GlooPending>(pg_->allreduce(tensors), aborted_, rank_);
  }

  at::Tensor all_gather(const at::Tensor& local, const Deadline& deadline) override {
    check_alive("all_gather");
    std::vector<at::Tensor> input{local.contiguous()};
    std::vector<std::vector<at::Tensor>> output(1);
    for (int i = 0; i < size_; ++i) output[0].push_back(torch::empty_like(input[0]));
    wait_work(pg_->allgather(output, input), deadline, aborted_, "all_gather", rank_);
    return torch::cat(output[0], 0);
  }

  void broadcast(at::Tensor& tensor, int root, const Deadline& deadline) override {
    check_alive("broadcast");
    std::vector<at::Tensor> tensors{tensor};
    c10d::BroadcastOptions options;
    options.rootRank = root;
    wait_work(pg_->broadcast(tensors, options), deadline, aborted_, "broadcast", rank_);
  }

  void barrier(const Deadline& deadline) override {
    check_alive("barrier");
    // A one-element all-reduce: c10d's Gloo barrier cannot be polled with a deadline.
    auto token = torch::zeros({1});
    all_reduce_sum_async(token)->wait(deadline);
  }

  void abort() override { aborted_ = true; }

  ~GlooGroup() override {
    // After an abort a Gloo thread may still sit in a collective whose peer is gone, and
    // ~ProcessGroupGloo would join it (for up to the Gloo timeout). The worker is about to
    // re-rendezvous or exit, so leave the old group to the process' end instead.
    if (aborted_.load()) (void)pg_.release();
  }

 private:
  void check_alive(const char* op) const {
    HARVEST_REQUIRE(!aborted_.load(), Runtime, "gloo rank ", rank_, ": ", op, " after abort");
  }

  int rank_;
  int size_;
  std::atomic<bool> aborted_{false};
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg_;
};

}  // namespace

std::unique_ptr<CommGroup> make_gloo_group(const GlooRendezvous& rendezvous) {
  return std::make_unique<GlooGroup>(rendezvous, nullptr);
}

std::unique_ptr<CommGroup> make_gloo_group(const GlooRendezvous& rendezvous,
                                           const std::shared_ptr<GlooStore>& served) {
  HARVEST_REQUIRE(!served || rendezvous.rank == 0, Internal, "gloo rank ", rendezvous.rank,
                  " was handed a served store: only rank 0 serves it");
  return std::make_unique<GlooGroup>(rendezvous, served);
}

std::shared_ptr<GlooStore> serve_gloo_store(const std::string& host, int port, int world_size,
                                            double timeout_s) {
  try {
    return std::make_shared<ServedStore>(open_store(host, port, true, world_size, timeout_s));
  } catch (const std::exception& e) {
    fail(ErrorKind::Runtime, "cannot serve the gloo store at ", host, ":", port, ": ", e.what());
  }
}

}  // namespace harvest
