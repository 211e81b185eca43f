// GatewayActor: the coordinator's only network socket (a ROUTER). Decodes and validates every
// incoming message (size, framing, Cap'n Proto, protocol version), answers the bad ones with an
// Error and routes the good ones to the actor that owns them; sends what actors address to peers.
// ZapActor: the ZeroMQ authentication handler that admits only allow-listed CURVE client keys.
#pragma once

#include <set>

#include "coordinator/actor.hpp"
#include "coordinator/settings.hpp"
#include "core/time.hpp"

namespace harvest::coord {

class GatewayActor : public Actor {
 public:
  GatewayActor(ZmqContext& ctx, const CoordinatorSettings& settings);
  ~GatewayActor() override { stop(); }  // before the socket the loop uses goes away
  // The endpoint actually bound (tcp://127.0.0.1:0 becomes the chosen port).
  std::string bound_endpoint() const { return endpoint_; }

 protected:
  void handle(const std::string& to, const InMessage& message) override;
  void on_tick() override;
  std::vector<ZmqSocket*> extra_sockets() override { return {&router_}; }
  void on_readable(ZmqSocket& socket) override;

 private:
  void reject(const std::string& peer, proto::ErrorKind kind, const std::string& why);

  size_t max_bytes_;
  ZmqSocket router_;
  std::string endpoint_;
  // Rejections are logged at most kLoggedPerTick per tick, the rest counted (a flood must not
  // turn into a disk-filling log).
  size_t rejected_this_tick_ = 0;
  size_t rejected_total_ = 0;
};

class ZapActor : public Actor {
 public:
  ZapActor(ZmqContext& ctx, std::chrono::milliseconds tick, std::set<std::string> authorized);
  ~ZapActor() override { stop(); }

 protected:
  void handle(const std::string&, const InMessage&) override {}
  std::vector<ZmqSocket*> extra_sockets() override { return {&rep_}; }
  void on_readable(ZmqSocket& socket) override;

 private:
  ZmqSocket rep_;
  std::set<std::string> authorized_;  // empty: any CURVE client
};

}  // namespace harvest::coord
