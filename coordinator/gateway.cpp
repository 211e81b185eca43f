#include "coordinator/gateway.hpp"

#include <spdlog/spdlog.h>

#include "coordinator/curve.hpp"

namespace harvest::coord {
namespace {

constexpr size_t kLoggedPerTick = 5;

bool is_loopback(const std::string& endpoint) {
  return endpoint.rfind("inproc://", 0) == 0 || endpoint.rfind("ipc://", 0) == 0 ||
         endpoint.find("://127.") != std::string::npos || endpoint.find("://localhost") != std::string::npos ||
         endpoint.find("://[::1]") != std::string::npos;
}

// Which actor owns a message a peer may send; nullptr: not accepted from the wire.
const char* owner_of(Body::Which which) {
  switch (which) {
    case Body::REGISTER:
    case Body::HEARTBEAT:
    case Body::STEP_REPORT:
    case Body::LEAVE:
    case Body::STATUS_REQUEST: return actors::kMembership;
    case Body::RENDEZVOUS_OFFER: return actors::kRendezvous;
    case Body::CHECKPOINT_ACK:
    case Body::CHECKPOINT_REQUEST: return actors::kCommitter;
    case Body::EVAL_RESULT: return actors::kSweeper;
    default: return nullptr;
  }
}

}  // namespace

GatewayActor::GatewayActor(ZmqContext& ctx, const CoordinatorSettings& settings)
    : Actor(ctx, actors::kGateway, settings.heartbeat,
            {actors::kMembership, actors::kRendezvous, actors::kCommitter, actors::kSweeper}),
      max_bytes_(settings.max_message_bytes),
      router_(ctx, ZMQ_ROUTER, settings.address) {
  // A peer that reconnects (same routing id) takes its identity over from the dead connection.
  router_.set(ZMQ_ROUTER_HANDOVER, 1);
  router_.set(ZMQ_MAXMSGSIZE, static_cast<int64_t>(settings.max_message_bytes));
  router_.set(ZMQ_SNDHWM, 10000);
  router_.set(ZMQ_RCVHWM, 10000);
  if (!settings.curve_server_secret.empty()) {
    router_.set(ZMQ_CURVE_SERVER, 1);
    router_.set(ZMQ_CURVE_SECRETKEY, read_key_file(settings.curve_server_secret, "coordinator.curve_server_secret"));
    router_.set(ZMQ_ZAP_DOMAIN, std::string("harvest"));
  } else if (!is_loopback(settings.address)) {
    spdlog::warn("coordinator binds {} without CURVE: any host that reaches it can join the job "
                 "(set coordinator.curve_server_public/curve_server_secret)",
                 settings.address);
  }
  router_.bind(settings.address);
  endpoint_ = router_.get_string(ZMQ_LAST_ENDPOINT);
}

void GatewayActor::handle(const std::string& to, const InMessage& message) {
  router_.send({to, encode(message.root())});
}

void GatewayActor::reject(const std::string& peer, proto::ErrorKind kind, const std::string& why) {
  ++rejected_total_;
  if (++rejected_this_tick_ <= kLoggedPerTick) spdlog::warn("gateway: rejected a message: {}", why);
  router_.send({peer, error_message(kind, why)});
}

void GatewayActor::on_tick() {
  if (rejected_this_tick_ > kLoggedPerTick)
    spdlog::warn("gateway: {} more message(s) rejected ({} in total)", rejected_this_tick_ - kLoggedPerTick,
                 rejected_total_);
  rejected_this_tick_ = 0;
}

void GatewayActor::on_readable(ZmqSocket& socket) {
  for (int i = 0; i < 256; ++i) {
    auto frames = socket.recv(std::chrono::milliseconds(0));
    if (!frames) return;
    const std::string& peer = (*frames)[0];
    if (frames->size() != 2) {
      reject(peer, proto::ErrorKind::MALFORMED, cat("expected one frame per message, got ", frames->size() - 1));
      continue;
    }
    auto decoded = decode((*frames)[1], max_bytes_);
    if (auto* err = std::get_if<WireError>(&decoded)) {
      reject(peer, err->kind, err->message);
      continue;
    }
    const InMessage& message = *std::get<std::unique_ptr<InMessage>>(decoded);
    const char* owner = owner_of(message.which());
    if (!owner) {
      reject(peer, proto::ErrorKind::UNKNOWN_MESSAGE,
             cat("'", body_name(message.which()), "' is not a message the coordinator accepts from peers"));
      continue;
    }
    // The actor sees exactly the validated, canonical bytes and the sender's routing id.
    const std::string bytes = encode(message.root());
    forward(owner, peer, bytes);
  }
}

ZapActor::ZapActor(ZmqContext& ctx, std::chrono::milliseconds tick, std::set<std::string> authorized)
    : Actor(ctx, "zap", tick, {}), rep_(ctx, ZMQ_REP, "zap"), authorized_(std::move(authorized)) {
  rep_.bind("inproc://zeromq.zap.01");
}

void ZapActor::on_readable(ZmqSocket& socket) {
  auto frames = socket.recv(std::chrono::milliseconds(0));
  if (!frames) return;
  // ZAP 1.0 request: version, request id, domain, address, identity, mechanism, credentials...
  const auto& f = *frames;
  std::string status = "400", text = "malformed ZAP request", user;
  if (f.size() >= 6 && f[0] == "1.0") {
    const std::string& mechanism = f[5];
    if (mechanism == "CURVE" && f.size() >= 7 && f[6].size() == 32) {
      char z85[41];
      zmq_z85_encode(z85, reinterpret_cast<const uint8_t*>(f[6].data()), 32);
      if (authorized_.empty() || authorized_.count(z85)) {
        status = "200";
        text = "OK";
        user = z85;
      } else {
        text = "client key not in coordinator.curve_authorized_keys";
        spdlog::warn("zap: refused CURVE client {} from {}", z85, f[3]);
      }
    } else {
      text = "mechanism " + mechanism + " not allowed";
      spdlog::warn("zap: refused {} peer from {}", mechanism, f[3]);
    }
  }
  socket.send({"1.0", f.size() > 1 ? f[1] : std::string(), status, text, user, std::string()});
}

}  // namespace harvest::coord
