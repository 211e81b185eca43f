#include "worker/loader_hub.hpp"

#include <zmq.h>

#include "coordinator/client.hpp"
#include "coordinator/curve.hpp"
#include "coordinator/gateway.hpp"
#include "coordinator/zmq_socket.hpp"
#include "core/error.hpp"

namespace harvest {

LoaderHub::LoaderHub(const Config& config) : ctx_(std::make_unique<coord::ZmqContext>()) {
  const std::string bind = cat("tcp://", config.dist.host, ":*");
  socket_ = std::make_unique<coord::ZmqSocket>(*ctx_, ZMQ_ROUTER, "loader hub " + bind);
  socket_->set(ZMQ_ROUTER_MANDATORY, 1);
  socket_->set(ZMQ_RCVHWM, static_cast<int>(config.data.queue_depth * config.data.loaders_per_worker) + 8);
  // One part is at most a batch of frames; a peer cannot make this worker buffer more per message.
  const int64_t clip = config.model.frames * config.model.image_size * config.model.image_size * 3;
  socket_->set(ZMQ_MAXMSGSIZE, config.data.batch_size * clip + (int64_t{1} << 20));
  // With CURVE keys the data plane is a CURVE server under this peer's own key pair: loaders
  // learn its public key from the shard plan (which travels over the authenticated control
  // plane), and coordinator.curve_authorized_keys, when set, admits the same clients as the
  // coordinator does. The ZAP handler must exist before the first handshake.
  const coord::CurveClientKeys keys = coord::client_curve_keys(config);
  if (keys.enabled()) {
    const auto& allow = config.coordinator.curve_authorized_keys;
    if (!allow.empty()) {
      zap_ = std::make_unique<coord::ZapActor>(
          *ctx_, std::chrono::milliseconds(config.coordinator.heartbeat_ms),
          coord::read_authorized_keys(allow));
      zap_->start();
    }
    socket_->set(ZMQ_CURVE_SERVER, 1);
    socket_->set(ZMQ_CURVE_SECRETKEY, keys.client_secret);
    curve_public_ = keys.client_public;
  }
  socket_->bind(bind);
  // Peers connect to the name dist.host gives (it may be a host name), on the port bound.
  const std::string bound = socket_->get_string(ZMQ_LAST_ENDPOINT);
  const size_t colon = bound.rfind(':');
  HARVEST_REQUIRE(colon != std::string::npos, Runtime, "loader hub: bound endpoint '", bound,
                  "' has no port");
  endpoint_ = cat("tcp://", config.dist.host, bound.substr(colon));
}

LoaderHub::~LoaderHub() {
  socket_.reset();
  zap_.reset();
  ctx_.reset();
}

void LoaderHub::post(uint64_t generation, std::vector<uint64_t> loaders) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++plan_.version;
  plan_.generation = generation;
  plan_.loaders = std::move(loaders);
}

LoaderHub::Plan LoaderHub::plan() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return plan_;
}

}  // namespace harvest
