// RAII for ZeroMQ: a context, a socket, multipart messages, and a deadline-bounded poll.
// Every call goes through check_zmq so errors name the call and the endpoint.
#pragma once

#include <zmq.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace harvest::coord {

class ZmqContext {
 public:
  ZmqContext();
  ~ZmqContext();
  ZmqContext(const ZmqContext&) = delete;
  ZmqContext& operator=(const ZmqContext&) = delete;
  void* get() const { return ctx_; }

 private:
  void* ctx_ = nullptr;
};

// One frame of a multipart message (bytes; may hold binary).
using Frame = std::string;
using Multipart = std::vector<Frame>;

class ZmqSocket {
 public:
  ZmqSocket(ZmqContext& ctx, int type, std::string name);
  ~ZmqSocket();
  ZmqSocket(const ZmqSocket&) = delete;
  ZmqSocket& operator=(const ZmqSocket&) = delete;

  void bind(const std::string& endpoint);
  void connect(const std::string& endpoint);
  void set(int option, int value);
  void set(int option, int64_t value);
  void set(int option, const std::string& value);
  std::string get_string(int option) const;

  // Sends all frames; returns false (nothing sent) when the peer queue is full or, with
  // ZMQ_IMMEDIATE, not connected: control messages are dropped, never block an actor.
  bool send(const Multipart& frames);
  // Receives one whole multipart message, waiting at most `timeout` (0: don't wait).
  std::optional<Multipart> recv(std::chrono::milliseconds timeout);

  void* get() const { return sock_; }
  const std::string& name() const { return name_; }

 private:
  void* sock_ = nullptr;
  std::string name_;  // endpoint or role, for error messages
};

// Waits until one of `sockets` is readable or `timeout` passes; returns the index of the first
// readable one, or nullopt on timeout. EINTR counts as a timeout (the caller re-checks its stop flag).
std::optional<size_t> poll_readable(const std::vector<ZmqSocket*>& sockets, std::chrono::milliseconds timeout);

}  // namespace harvest::coord
