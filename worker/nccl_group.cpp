// CommGroup over the NCCL API directly. Communicators are non-blocking (config.blocking = 0) so
// that abort() (ncclCommAbort) and deadlines work while an operation is in flight. Collectives
// run on a dedicated stream ordered after the compute stream by events; waits poll the event,
// the communicator's async error, the abort flag and the deadline.
//
// Compute-stream ordering uses the legacy default stream, which is LibTorch's default CUDA stream
// (this file deliberately does not depend on LibTorch's CUDA headers, so it compiles against a
// CPU-only LibTorch too).
#include <atomic>
#include <cstring>
#include <mutex>
#include <thread>

#include "core/check_cuda.hpp"
#include "core/error.hpp"
#include "worker/comm_group.hpp"

namespace harvest {
namespace {

ncclDataType_t nccl_type(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat: return ncclFloat32;
    case at::kDouble: return ncclFloat64;
    case at::kHalf: return ncclFloat16;
    case at::kBFloat16: return ncclBfloat16;
    case at::kLong: return ncclInt64;
    case at::kInt: return ncclInt32;
    case at::kByte: return ncclUint8;
    default: fail(ErrorKind::Internal, "nccl: unsupported dtype ", t.scalar_type());
  }
}

class NcclGroup;

class NcclPending final : public PendingOp {
 public:
  NcclPending(NcclGroup& group, cudaEvent_t done, const char* op) : group_(group), done_(done), op_(op) {}
  ~NcclPending() override;
  void wait(const Deadline& deadline) override;

 private:
  NcclGroup& group_;
  cudaEvent_t done_;
  const char* op_;
};

class NcclGroup final : public CommGroup {
 public:
  explicit NcclGroup(const NcclRendezvous& r) : rank_(r.rank), size_(r.world_size), device_(r.device) {
    HARVEST_REQUIRE(r.unique_id.size() == sizeof(ncclUniqueId), Runtime, "nccl rendezvous (generation ",
                    r.generation, "): unique id has ", r.unique_id.size(), " bytes, expected ",
                    sizeof(ncclUniqueId));
    ncclUniqueId id;
    std::memcpy(&id, r.unique_id.data(), sizeof id);
    const std::string who = "rank " + std::to_string(rank_) + " generation " + std::to_string(r.generation);
    check_cuda(cudaSetDevice(device_), "cudaSetDevice", who);
    check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate", who);
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    check_nccl(ncclCommInitRankConfig(&comm_, size_, id, rank_, &config), "ncclCommInitRankConfig", who);
    poll_until_ready("ncclCommInitRankConfig", Deadline::after_seconds(300));
  }

  ~NcclGroup() override {
    if (comm_) ncclCommDestroy(comm_);  // an aborted group has none left
    if (stream_) cudaStreamDestroy(stream_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "nccl"; }

  std::unique_ptr<PendingOp> all_reduce_sum_async(at::Tensor& t) override {
    check_tensor(t, "all_reduce");
    order_after_compute();
    with_comm("all_reduce", [&](ncclComm_t comm) {
      check_nccl(ncclAllReduce(t.data_ptr(), t.data_ptr(), t.numel(), nccl_type(t), ncclSum, comm, stream_),
                 "ncclAllReduce", describe());
    });
    return std::make_unique<NcclPending>(*this, record_done(), "all_reduce");
  }

  at::Tensor all_gather(const at::Tensor& local, const Deadline& deadline) override {
    const auto input = local.contiguous();
    check_tensor(input, "all_gather");
    auto sizes = input.sizes().vec();
    sizes[0] *= size_;
    auto output = torch::empty(sizes, input.options());
    order_after_compute();
    with_comm("all_gather", [&](ncclComm_t comm) {
      check_nccl(ncclAllGather(input.data_ptr(), output.data_ptr(), input.numel(), nccl_type(input), comm, stream_),
                 "ncclAllGather", describe());
    });
    NcclPending(*this, record_done(), "all_gather").wait(deadline);
    return output;
  }

  void broadcast(at::Tensor& t, int root, const Deadline& deadline) override {
    check_tensor(t, "broadcast");
    order_after_compute();
    with_comm("broadcast", [&](ncclComm_t comm) {
      check_nccl(ncclBroadcast(t.data_ptr(), t.data_ptr(), t.numel(), nccl_type(t), root, comm, stream_),
                 "ncclBroadcast", describe());
    });
    NcclPending(*this, record_done(), "broadcast").wait(deadline);
  }

  void barrier(const Deadline& deadline) override {
    auto token = torch::zeros({1}, torch::TensorOptions().device(torch::kCUDA, device_));
    all_reduce_sum_async(token)->wait(deadline);
  }

  // Called from the coordinator client's thread while the training thread may be inside a
  // collective: the lock keeps the communicator alive under any caller of with_comm().
  void abort() override {
    std::lock_guard<std::mutex> lock(comm_mutex_);
    aborted_ = true;
    if (comm_) ncclCommAbort(comm_);
    comm_ = nullptr;
  }

  // Polls an event until it completes, failing fast on abort, async NCCL errors or the deadline.
  void wait_event(cudaEvent_t event, const Deadline& deadline, const char* op) {
    while (true) {
      HARVEST_REQUIRE(!aborted_.load(), Runtime, "nccl ", describe(), ": ", op, " aborted");
      const cudaError_t state = cudaEventQuery(event);
      if (state == cudaSuccess) break;
      if (state != cudaErrorNotReady) check_cuda(state, "cudaEventQuery", describe());
      check_async_error(op);
      if (deadline.expired()) {
        abort();
        fail(ErrorKind::Runtime, "nccl ", describe(), ": ", op, " missed its deadline (a peer is slow, hung or gone)");
      }
      std::this_thread::yield();
    }
    // Later compute on the default stream must see the result.
    check_cuda(cudaStreamWaitEvent(nullptr, event, 0), "cudaStreamWaitEvent", describe());
  }

 private:
  std::string describe() const { return "rank " + std::to_string(rank_) + "/" + std::to_string(size_); }

  void check_tensor(const at::Tensor& t, const char* op) const {
    HARVEST_REQUIRE(!aborted_.load(), Runtime, "nccl ", describe(), ": ", op, " after abort");
    HARVEST_REQUIRE(t.is_cuda() && t.is_contiguous(), Internal, "nccl ", op, " needs a contiguous CUDA tensor");
  }

  // Runs `call` with the communicator under abort()'s lock; after an abort it fails "aborted".
  template <class Call>
  void with_comm(const char* op, Call&& call) {
    std::lock_guard<std::mutex> lock(comm_mutex_);
    HARVEST_REQUIRE(comm_ != nullptr, Runtime, "nccl ", describe(), ": ", op, " aborted");
    call(comm_);
  }

  void check_async_error(const char* op) {
    ncclResult_t async = ncclSuccess;
    with_comm(op, [&](ncclComm_t comm) {
      check_nccl(ncclCommGetAsyncError(comm, &async), "ncclCommGetAsyncError", describe());
    });
    if (async != ncclSuccess && async != ncclInProgress)
      fail(ErrorKind::Runtime, "nccl ", describe(), ": ", op, " failed: ", ncclGetErrorString(async));
  }

  void poll_until_ready(const char* op, const Deadline& deadline) {
    ncclResult_t state = ncclInProgress;
    while (state == ncclInProgress) {
      with_comm(op, [&](ncclComm_t comm) {
        check_nccl(ncclCommGetAsyncError(comm, &state), "ncclCommGetAsyncError", describe());
      });
      HARVEST_REQUIRE(state == ncclSuccess || state == ncclInProgress, Runtime, "nccl ", describe(), ": ", op,
                      " failed: ", ncclGetErrorString(state));
      HARVEST_REQUIRE(!deadline.expired(), Runtime, "nccl ", describe(), ": ", op, " missed its deadline");
      std::this_thread::yield();
    }
  }

  void order_after_compute() {
    cudaEvent_t ready;
    check_cuda(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming), "cudaEventCreate", describe());
    check_cuda(cudaEventRecord(ready, nullptr), "cudaEventRecord", describe());
    check_cuda(cudaStreamWaitEvent(stream_, ready, 0), "cudaStreamWaitEvent", describe());
    cudaEventDestroy(ready);  // destruction is deferred by CUDA until the wait is satisfied
  }

  cudaEvent_t record_done() {
    cudaEvent_t done;
    check_cuda(cudaEventCreateWithFlags(&done, cudaEventDisableTiming), "cudaEventCreate", describe());
    check_cuda(cudaEventRecord(done, stream_), "cudaEventRecord", describe());
    return done;
  }

  int rank_;
  int size_;
  int device_;
  std::mutex comm_mutex_;
  ncclComm_t comm_ = nullptr;  // null once aborted
  cudaStream_t stream_ = nullptr;
  std::atomic<bool> aborted_{false};
};

NcclPending::~NcclPending() { cudaEventDestroy(done_); }
void NcclPending::wait(const Deadline& deadline) { group_.wait_event(done_, deadline, op_); }

}  // namespace

bool nccl_available() { return true; }

std::string nccl_version_text() {
  int runtime = 0;
  std::string loaded = "unknown";
  if (ncclGetVersion(&runtime) == ncclSuccess)
    loaded = cat(runtime / 10000, ".", runtime / 100 % 100, ".", runtime % 100);
  int cudart = 0;
  cudaRuntimeGetVersion(&cudart);
  return cat("NCCL ", NCCL_MAJOR, ".", NCCL_MINOR, ".", NCCL_PATCH, " (loaded ", loaded, "), CUDA runtime ",
             cudart / 1000, ".", cudart % 1000 / 10);
}

void use_cuda_device(int index) {
  check_cuda(cudaSetDevice(index), "cudaSetDevice", "cuda:" + std::to_string(index));
}

std::string new_nccl_unique_id() {
  ncclUniqueId id;
  check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId", "rank 0");
  return std::string(reinterpret_cast<const char*>(&id), sizeof id);
}

std::unique_ptr<CommGroup> make_nccl_group(const NcclRendezvous& rendezvous) {
  return std::make_unique<NcclGroup>(rendezvous);
}

}  // namespace harvest
