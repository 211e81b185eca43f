// The actor runtime: one thread, one inbox (an inproc PULL socket named after the actor), one
// poll loop whose timeout is the heartbeat interval. Messages between actors are two frames:
//   [from][Envelope bytes]
// where `from` is a peer's ZeroMQ routing id (messages that came from the wire) or "@<actor>"
// (messages from another actor). Handlers never see unvalidated bytes: the gateway decodes
// wire messages, actors re-decode (cheap) what they receive. A handler that throws is logged and
// the loop goes on: a bad message never takes an actor down.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "coordinator/wire.hpp"
#include "coordinator/zmq_socket.hpp"
#include "core/error.hpp"

namespace harvest::coord {

std::string inbox_endpoint(const std::string& actor);

class Actor {
 public:
  // Binds the inbox now (so senders never race the thread start) and connects an outbox to every
  // actor in `peers`. Sockets move to the actor thread in start().
  Actor(ZmqContext& ctx, std::string name, std::chrono::milliseconds tick, const std::vector<std::string>& peers);
  virtual ~Actor();
  Actor(const Actor&) = delete;
  Actor& operator=(const Actor&) = delete;

  void start();
  // Asks the loop to finish (it notices within one tick) and joins the thread.
  void stop();
  const std::string& name() const { return name_; }
  // False once the loop died of an error it could not handle (logged); the owner shuts down.
  bool healthy() const { return healthy_.load(); }

 protected:
  // One validated message. `from` as described above.
  virtual void handle(const std::string& from, const InMessage& message) = 0;
  // Called at least once per tick, after messages.
  virtual void on_tick() {}
  // Extra sockets the loop polls beside the inbox (the gateway's ROUTER, the ZAP REP socket).
  virtual std::vector<ZmqSocket*> extra_sockets() { return {}; }
  virtual void on_readable(ZmqSocket& socket) {}

  // Sends an envelope to another actor (connected in the constructor).
  void send_to(const std::string& actor, const std::string& bytes);
  // Sends an envelope to another actor on behalf of `from` (the gateway forwarding a peer's message).
  void forward(const std::string& actor, const std::string& from, const std::string& bytes);
  // Sends an envelope to a wire peer through the gateway.
  void send_to_peer(const std::string& routing_id, const std::string& bytes);

  ZmqContext& context() { return ctx_; }
  std::chrono::milliseconds tick() const { return tick_; }

 private:
  void loop();

  ZmqContext& ctx_;
  std::string name_;
  std::chrono::milliseconds tick_;
  ZmqSocket inbox_;
  std::map<std::string, std::unique_ptr<ZmqSocket>> outboxes_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> healthy_{true};
  std::thread thread_;
};

// Actor names (their inboxes are inproc://harvest.<name>).
namespace actors {
inline constexpr const char* kGateway = "gateway";
inline constexpr const char* kMembership = "membership";
inline constexpr const char* kRendezvous = "rendezvous";
inline constexpr const char* kScheduler = "scheduler";
inline constexpr const char* kCommitter = "committer";
inline constexpr const char* kJournal = "journal";
inline constexpr const char* kSweeper = "sweeper";
}  // namespace actors

}  // namespace harvest::coord
