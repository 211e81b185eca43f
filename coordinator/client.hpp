// CoordinatorClient: the peer side of the control protocol, used by workers, loaders and eval
// processes. Its own thread registers, heartbeats every heartbeat_ms with the progress the owner
// last set, and turns what the coordinator sends into events the owner takes with next_event().
//
// Abort is special: it is acted on in the client thread at once (abort_generation() rises and
// on_abort runs), so a training thread blocked in a collective can be unblocked without waiting
// for its own loop.
//
// When the coordinator goes silent for miss_limit heartbeats the client keeps trying: it
// recreates its connection with exponential backoff (heartbeat .. 2 s) and resumes heartbeating
// under the same member id; a restarted coordinator that replayed its journal takes it back, one
// that does not know the id answers unknownMember and the client registers again.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "coordinator/curve.hpp"
#include "coordinator/wire.hpp"
#include "coordinator/zmq_socket.hpp"
#include "core/config/config.hpp"

namespace harvest::coord {

// The part of a ShardPlan a worker acts on (data.loader_placement = coordinator).
struct ShardPlanInfo {
  uint64_t generation = 0;
  std::vector<uint64_t> loader_member_ids;  // the loaders that feed this worker, in plan order
};

struct ClientOptions {
  std::string address = "tcp://127.0.0.1:29500";
  proto::Role role = proto::Role::WORKER;
  std::string host;  // empty: gethostname()
  uint32_t pid = 0;  // 0: getpid()
  std::string device = "cpu";
  int32_t desired_rank = -1;
  std::string data_endpoint;
  std::string data_curve_key;  // public key the data endpoint serves CURVE with; empty: plaintext
  std::chrono::milliseconds heartbeat{100};
  int64_t miss_limit = 5;
  size_t max_message_bytes = 64u << 20;
  CurveClientKeys curve;
  // Runs on the client thread when an Abort arrives: (new generation, reason).
  std::function<void(uint64_t, const std::string&)> on_abort;
  // Runs on the client thread when a ShardPlan arrives (it is queued as an event as well), so a
  // training thread waiting for batches learns of new loaders without returning to its loop.
  std::function<void(const ShardPlanInfo&)> on_shard_plan;
};

// Client options from [coordinator] (address, heartbeat, limits, CURVE key files).
ClientOptions client_options(const Config& config, proto::Role role);
// CURVE client keys from [coordinator] (all empty when curve_server_public is unset).
CurveClientKeys client_curve_keys(const Config& config);

struct Progress {
  uint64_t generation = 0;
  uint64_t step = 0;
  proto::MemberState state = proto::MemberState::REGISTERED;
  double loss = 0;
  double samples_per_sec = 0;
  double step_seconds = 0;
};

class CoordinatorClient {
 public:
  explicit CoordinatorClient(ClientOptions options);
  ~CoordinatorClient();
  CoordinatorClient(const CoordinatorClient&) = delete;
  CoordinatorClient& operator=(const CoordinatorClient&) = delete;

  // What the next heartbeats report (any thread).
  void set_progress(const Progress& progress);
  // Queues a message for the coordinator (any thread). Fields that name this member
  // (memberId) are the caller's to fill from member_id().
  void send(OutMessage& message);
  void report_step(uint64_t generation, uint64_t step, uint64_t samples_seen, double loss, double samples_per_sec);
  void offer_ncclid(uint64_t generation, const std::string& unique_id_128_bytes);
  void offer_gloo_store(uint64_t generation, const std::string& host_port);
  void ack_checkpoint(uint64_t generation, uint64_t step, int32_t rank, const std::string& path, uint64_t bytes,
                      uint64_t epoch, uint64_t data_cursor);
  // The answer to evalJob `job_id`: the flat metrics ("<task>.<metric>"), or an error (non-empty).
  void send_eval_result(uint64_t job_id, const std::vector<std::pair<std::string, double>>& metrics,
                        const std::string& error);
  // clean: the member ends with its group (training finished, or an agreed stop after a committed
  // final checkpoint); the coordinator then does not abort the generation for it.
  void leave(const std::string& reason, bool clean = false);

  // The next message from the coordinator (Assign, Rendezvous, Abort, ShardPlan, checkpoint
  // request/commit, EvalJob, Shutdown, Error), or nullopt when `timeout` passes first.
  std::optional<std::unique_ptr<InMessage>> next_event(std::chrono::milliseconds timeout);

  uint64_t member_id() const { return member_id_.load(); }
  // The highest generation an Abort announced: collectives of older generations must stop.
  uint64_t abort_generation() const { return abort_generation_.load(); }
  bool connected() const { return connected_.load(); }
  uint64_t coordinator_incarnation() const { return incarnation_.load(); }
  const std::string& routing_id() const { return routing_id_; }

 private:
  void loop();
  std::unique_ptr<ZmqSocket> make_dealer();
  void on_message(const std::string& bytes);
  void push_event(std::unique_ptr<InMessage> message);

  ClientOptions options_;
  std::string routing_id_;
  ZmqContext ctx_;
  std::mutex command_mutex_;
  std::unique_ptr<ZmqSocket> command_push_;  // owner threads -> client thread, under command_mutex_
  std::mutex progress_mutex_;
  Progress progress_;
  std::mutex events_mutex_;
  std::condition_variable events_ready_;
  std::deque<std::unique_ptr<InMessage>> events_;
  std::atomic<uint64_t> member_id_{0};
  std::atomic<uint64_t> abort_generation_{0};
  std::atomic<uint64_t> incarnation_{0};
  std::atomic<bool> connected_{false};
  std::atomic<bool> stop_{false};
  std::string command_endpoint_;
  std::thread thread_;
};

// Asks the running generation for a checkpoint now (`harvest checkpoint`): every rank saves at
// its next step boundary and the two-phase commit runs as usual. Returns the checkpointCommit of
// the first checkpoint committed after the request, or nullopt when none came within `timeout`;
// throws Runtime with the coordinator's reason when it refuses (no generation training, the
// generation aborted before the commit).
std::optional<std::unique_ptr<InMessage>> request_checkpoint(const std::string& address,
                                                             const CurveClientKeys& curve,
                                                             std::chrono::milliseconds timeout);

// One status request: the reply, or nullopt when no reply came within `timeout`.
std::optional<std::unique_ptr<InMessage>> query_status(const std::string& address, const CurveClientKeys& curve,
                                                       std::chrono::milliseconds timeout);

}  // namespace harvest::coord
