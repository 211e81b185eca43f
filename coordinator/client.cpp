#include "coordinator/client.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <random>

#include "core/error.hpp"
#include "core/time.hpp"

namespace harvest::coord {
namespace {

std::string hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

std::string random_hex(size_t digits) {
  std::random_device rd;
  std::string out;
  const char* hex = "0123456789abcdef";
  for (size_t i = 0; i < digits; ++i) out.push_back(hex[rd() % 16]);
  return out;
}

void apply_curve(ZmqSocket& socket, const CurveClientKeys& curve) {
  if (!curve.enabled()) return;
  socket.set(ZMQ_CURVE_SERVERKEY, curve.server_public);
  socket.set(ZMQ_CURVE_PUBLICKEY, curve.client_public);
  socket.set(ZMQ_CURVE_SECRETKEY, curve.client_secret);
}

}  // namespace

CurveClientKeys client_curve_keys(const Config& config) {
  const auto& c = config.coordinator;
  CurveClientKeys keys;
  if (c.curve_server_public.empty()) return keys;
  HARVEST_REQUIRE(!c.curve_client_public.empty() && !c.curve_client_secret.empty(), Config,
                  "coordinator.curve_server_public is set: coordinator.curve_client_public and "
                  "coordinator.curve_client_secret must name this peer's key files (harvest keygen "
                  "--out PREFIX)");
  keys.server_public = read_key_file(c.curve_server_public, "coordinator.curve_server_public");
  keys.client_public = read_key_file(c.curve_client_public, "coordinator.curve_client_public");
  keys.client_secret = read_key_file(c.curve_client_secret, "coordinator.curve_client_secret");
  return keys;
}

ClientOptions client_options(const Config& config, proto::Role role) {
  ClientOptions o;
  o.address = config.coordinator.address;
  o.role = role;
  o.heartbeat = std::chrono::milliseconds(config.coordinator.heartbeat_ms);
  o.miss_limit = config.coordinator.miss_limit;
  o.max_message_bytes = static_cast<size_t>(config.coordinator.max_message_mb) << 20;
  o.curve = client_curve_keys(config);
  return o;
}

CoordinatorClient::CoordinatorClient(ClientOptions options) : options_(std::move(options)) {
  if (options_.host.empty()) options_.host = hostname();
  if (options_.pid == 0) options_.pid = static_cast<uint32_t>(::getpid());
  // Stable for the life of the process: a restarted coordinator sees the same peer reconnect.
  routing_id_ = cat(options_.host, ":", options_.pid, ":", random_hex(8));
  command_endpoint_ = "inproc://harvest.client." + random_hex(8);
  command_push_ = std::make_unique<ZmqSocket>(ctx_, ZMQ_PUSH, "client commands");
  command_push_->connect(command_endpoint_);
  thread_ = std::thread([this] { loop(); });
}

CoordinatorClient::~CoordinatorClient() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  command_push_.reset();
}

void CoordinatorClient::set_progress(const Progress& progress) {
  std::lock_guard<std::mutex> lock(progress_mutex_);
  progress_ = progress;
}

void CoordinatorClient::send(OutMessage& message) {
  const std::string bytes = message.bytes();
  std::lock_guard<std::mutex> lock(command_mutex_);
  command_push_->send({bytes});
}

void CoordinatorClient::report_step(uint64_t generation, uint64_t step, uint64_t samples_seen,
                                    double loss, double samples_per_sec) {
  OutMessage out;
  auto r = out.body().initStepReport();
  r.setMemberId(member_id());
  r.setGeneration(generation);
  r.setStep(step);
  r.setSamplesSeen(samples_seen);
  r.getMetrics().setLoss(loss);
  r.getMetrics().setSamplesPerSec(samples_per_sec);
  send(out);
}

void CoordinatorClient::offer_ncclid(uint64_t generation, const std::string& unique_id) {
  HARVEST_REQUIRE(unique_id.size() == 128, Internal, "ncclUniqueId must be 128 bytes, got ",
                  unique_id.size());
  OutMessage out;
  auto o = out.body().initRendezvousOffer();
  o.setMemberId(member_id());
  o.setGeneration(generation);
  o.getBackend().setNcclUniqueId(
      kj::arrayPtr(reinterpret_cast<const kj::byte*>(unique_id.data()), unique_id.size()));
  send(out);
}

void CoordinatorClient::offer_gloo_store(uint64_t generation, const std::string& host_port) {
  OutMessage out;
  auto o = out.body().initRendezvousOffer();
  o.setMemberId(member_id());
  o.setGeneration(generation);
  o.getBackend().setGlooStore(host_port);
  send(out);
}

void CoordinatorClient::send_eval_result(uint64_t job_id,
                                         const std::vector<std::pair<std::string, double>>& metrics,
                                         const std::string& error) {
  OutMessage out;
  auto r = out.body().initEvalResult();
  r.setJobId(job_id);
  r.setMemberId(member_id());
  r.setError(error);
  auto list = r.initMetrics(static_cast<unsigned>(metrics.size()));
  for (size_t i = 0; i < metrics.size(); ++i) {
    list[static_cast<unsigned>(i)].setName(metrics[i].first);
    list[static_cast<unsigned>(i)].setValue(metrics[i].second);
  }
  send(out);
}

void CoordinatorClient::ack_checkpoint(uint64_t generation, uint64_t step, int32_t rank,
                                       const std::string& path, uint64_t bytes, uint64_t epoch,
                                       uint64_t data_cursor) {
  OutMessage out;
  auto a = out.body().initCheckpointAck();
  a.setMemberId(member_id());
  a.setGeneration(generation);
  a.setStep(step);
  a.setRank(rank);
  a.setPath(path);
  a.setBytes(bytes);
  a.setEpoch(epoch);
  a.setDataCursor(data_cursor);
  send(out);
}

void CoordinatorClient::leave(const std::string& reason, bool clean) {
  OutMessage out;
  auto l = out.body().initLeave();
  l.setMemberId(member_id());
  l.setReason(reason);
  l.setClean(clean);
  send(out);
}

std::optional<std::unique_ptr<InMessage>> CoordinatorClient::next_event(
    std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(events_mutex_);
  if (!events_ready_.wait_for(lock, timeout, [this] { return !events_.empty(); }))
    return std::nullopt;
  auto event = std::move(events_.front());
  events_.pop_front();
  return event;
}

void CoordinatorClient::push_event(std::unique_ptr<InMessage> message) {
  {
    std::lock_guard<std::mutex> lock(events_mutex_);
    events_.push_back(std::move(message));
  }
  events_ready_.notify_one();
}

std::unique_ptr<ZmqSocket> CoordinatorClient::make_dealer() {
  auto dealer = std::make_unique<ZmqSocket>(ctx_, ZMQ_DEALER, options_.address);
  dealer->set(ZMQ_ROUTING_ID, routing_id_);
  // Never queue control messages for a connection that is not up: a heartbeat is only worth
  // sending now, and a backlog would arrive stale at a restarted coordinator.
  dealer->set(ZMQ_IMMEDIATE, 1);
  dealer->set(ZMQ_SNDHWM, 1000);
  dealer->set(ZMQ_MAXMSGSIZE, static_cast<int64_t>(options_.max_message_bytes));
  dealer->set(ZMQ_RECONNECT_IVL, static_cast<int>(options_.heartbeat.count()));
  dealer->set(ZMQ_RECONNECT_IVL_MAX, 2000);
  apply_curve(*dealer, options_.curve);
  dealer->connect(options_.address);
  return dealer;
}

void CoordinatorClient::on_message(const std::string& bytes) {
  auto decoded = decode(bytes, options_.max_message_bytes);
  if (auto* err = std::get_if<WireError>(&decoded)) {
    spdlog::warn("coordinator client: ignored a message from {}: {}", options_.address,
                 err->message);
    return;
  }
  auto message = std::move(std::get<std::unique_ptr<InMessage>>(decoded));
  const auto body = message->body();
  switch (message->which()) {
    case Body::HEARTBEAT_ACK: {
      const uint64_t incarnation = body.getHeartbeatAck().getIncarnation();
      const uint64_t before = incarnation_.exchange(incarnation);
      if (before != 0 && before != incarnation)
        spdlog::info(
            "coordinator {} restarted (incarnation {:016x} -> {:016x}); member {} reattached",
            options_.address, before, incarnation, member_id());
      return;
    }
    case Body::ASSIGN:
      member_id_ = body.getAssign().getMemberId();
      break;
    case Body::ABORT: {
      const uint64_t generation = body.getAbort().getGeneration();
      uint64_t seen = abort_generation_.load();
      while (seen < generation && !abort_generation_.compare_exchange_weak(seen, generation)) {
      }
      if (options_.on_abort) options_.on_abort(generation, body.getAbort().getReason());
      break;
    }
    case Body::SHARD_PLAN:
      if (options_.on_shard_plan) {
        const auto plan = body.getShardPlan();
        ShardPlanInfo info;
        info.generation = plan.getGeneration();
        info.loader_member_ids = to_vector(plan.getLoaderMemberIds());
        options_.on_shard_plan(info);
      }
      break;
    case Body::ERROR:
      if (body.getError().getKind() == proto::ErrorKind::UNKNOWN_MEMBER) {
        spdlog::warn("coordinator {} does not know member {}: registering again", options_.address,
                     member_id());
        member_id_ = 0;
      }
      break;
    default:
      break;
  }
  push_event(std::move(message));
}

void CoordinatorClient::loop() {
  try {
    ZmqSocket commands(ctx_, ZMQ_PULL, "client commands");
    commands.bind(command_endpoint_);
    auto dealer = make_dealer();
    const auto lost_after = options_.heartbeat * options_.miss_limit;
    auto last_heard = Clock::now();
    auto next_beat = Clock::now();
    auto next_reconnect = Clock::now() + lost_after;
    auto backoff = options_.heartbeat;
    std::deque<std::string> outgoing;
    constexpr size_t kMaxBacklog = 1024;
    while (!stop_.load()) {
      const auto wait =
          std::chrono::duration_cast<std::chrono::milliseconds>(next_beat - Clock::now());
      const auto ready =
          poll_readable({dealer.get(), &commands}, std::max(wait, std::chrono::milliseconds(0)));
      if (ready && *ready == 0) {
        while (auto frames = dealer->recv(std::chrono::milliseconds(0))) {
          last_heard = Clock::now();
          if (!connected_.exchange(true)) {
            backoff = options_.heartbeat;
            spdlog::debug("coordinator client: connected to {}", options_.address);
          }
          if (frames->size() == 1) on_message(frames->front());
        }
      } else if (ready && *ready == 1) {
        while (auto frames = commands.recv(std::chrono::milliseconds(0)))
          if (frames->size() == 1) outgoing.push_back(std::move(frames->front()));
      }
      // Owner messages (checkpoint acks, rendezvous offers) wait for the connection instead of
      // being dropped; a bounded backlog keeps a long outage from growing memory.
      while (!outgoing.empty() && dealer->send({outgoing.front()})) outgoing.pop_front();
      while (outgoing.size() > kMaxBacklog) outgoing.pop_front();
      const auto now = Clock::now();
      if (now >= next_beat) {
        OutMessage out;
        const uint64_t id = member_id();
        if (id == 0) {
          auto reg = out.body().initRegister();
          reg.setRole(options_.role);
          reg.setHost(options_.host);
          reg.setPid(options_.pid);
          reg.setDevice(options_.device);
          reg.setDesiredRank(options_.desired_rank);
          reg.setDataEndpoint(options_.data_endpoint);
          reg.setDataCurveKey(options_.data_curve_key);
        } else {
          Progress p;
          {
            std::lock_guard<std::mutex> lock(progress_mutex_);
            p = progress_;
          }
          auto hb = out.body().initHeartbeat();
          hb.setMemberId(id);
          hb.setGeneration(p.generation);
          hb.setStep(p.step);
          hb.setState(p.state);
          hb.getMetrics().setLoss(p.loss);
          hb.getMetrics().setSamplesPerSec(p.samples_per_sec);
          hb.getMetrics().setStepSeconds(p.step_seconds);
        }
        dealer->send({out.bytes()});
        next_beat = now + options_.heartbeat;
      }
      if (now - last_heard > lost_after && now >= next_reconnect) {
        if (connected_.exchange(false))
          spdlog::warn(
              "coordinator {} silent for {} ms; reconnecting with backoff", options_.address,
              std::chrono::duration_cast<std::chrono::milliseconds>(now - last_heard).count());
        dealer = make_dealer();
        next_reconnect = now + backoff;
        backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
      }
    }
    // Stopping: what the owner queued last (a leave, a final checkpoint ack) still goes out,
    // within a short linger instead of none.
    while (auto frames = commands.recv(std::chrono::milliseconds(0)))
      if (frames->size() == 1) outgoing.push_back(std::move(frames->front()));
    dealer->set(ZMQ_LINGER, static_cast<int>(options_.heartbeat.count() * 2));
    for (const auto& bytes : outgoing)
      if (!dealer->send({bytes})) break;
  } catch (const std::exception& e) {
    spdlog::critical("coordinator client: stopped: {}", e.what());
    connected_ = false;
  }
}

namespace {

// One request to the coordinator at `address` on a fresh DEALER: waits until `timeout` for a
// `want` reply. With `resend` the request goes again every 200 ms without one (the connection may
// not be up yet; only for requests that may arrive twice); otherwise it is sent once (a DEALER
// queues it until the connection is up). An error reply throws Runtime:
// "coordinator <address><refusal>: <its message>".
std::optional<std::unique_ptr<InMessage>> ask_coordinator(const std::string& address,
                                                          const CurveClientKeys& curve,
                                                          std::chrono::milliseconds timeout,
                                                          OutMessage& request, Body::Which want,
                                                          bool resend, const char* refusal) {
  ZmqContext ctx;
  ZmqSocket dealer(ctx, ZMQ_DEALER, address);
  apply_curve(dealer, curve);
  dealer.connect(address);
  const std::string bytes = request.bytes();
  if (!resend) dealer.send({bytes});
  const Deadline deadline(timeout);
  while (!deadline.expired()) {
    if (resend) dealer.send({bytes});
    auto frames = dealer.recv(std::chrono::milliseconds(
        std::min<long long>(200, std::max(1LL, deadline.remaining_ms()))));
    if (!frames || frames->size() != 1) continue;
    auto decoded = decode(frames->front(), 64u << 20);
    if (auto* msg = std::get_if<std::unique_ptr<InMessage>>(&decoded)) {
      if ((*msg)->which() == want) return std::move(*msg);
      if ((*msg)->which() == Body::ERROR)
        fail(ErrorKind::Runtime, "coordinator ", address, refusal, ": ",
             (*msg)->body().getError().getMessage().cStr());
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::unique_ptr<InMessage>> request_checkpoint(const std::string& address,
                                                             const CurveClientKeys& curve,
                                                             std::chrono::milliseconds timeout) {
  OutMessage request;
  request.body().initCheckpointRequest();
  // Sent once: each request asks for a save.
  return ask_coordinator(address, curve, timeout, request, Body::CHECKPOINT_COMMIT,
                         /*resend=*/false, "");
}

std::optional<std::unique_ptr<InMessage>> query_status(const std::string& address,
                                                       const CurveClientKeys& curve,
                                                       std::chrono::milliseconds timeout) {
  OutMessage request;
  request.body().initStatusRequest();
  return ask_coordinator(address, curve, timeout, request, Body::STATUS_REPLY, /*resend=*/true,
                         " refused the status request");
}

}  // namespace harvest::coord
