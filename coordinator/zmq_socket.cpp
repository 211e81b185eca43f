#include "coordinator/zmq_socket.hpp"

#include <cerrno>

#include "core/check_zmq.hpp"

namespace harvest::coord {

ZmqContext::ZmqContext() : ctx_(zmq_ctx_new()) {
  HARVEST_REQUIRE(ctx_ != nullptr, Runtime, "zmq_ctx_new failed: ", zmq_strerror(zmq_errno()));
}

ZmqContext::~ZmqContext() {
  // zmq_ctx_term blocks until every socket is closed; sockets are RAII-closed (linger 0) first.
  while (zmq_ctx_term(ctx_) != 0 && zmq_errno() == EINTR) {
  }
}

ZmqSocket::ZmqSocket(ZmqContext& ctx, int type, std::string name)
    : sock_(zmq_socket(ctx.get(), type)), name_(std::move(name)) {
  HARVEST_REQUIRE(sock_ != nullptr, Runtime, "zmq_socket(", name_, ") failed: ", zmq_strerror(zmq_errno()));
  set(ZMQ_LINGER, 0);  // pending control messages are worthless after close; never hang on exit
}

ZmqSocket::~ZmqSocket() { zmq_close(sock_); }

void ZmqSocket::bind(const std::string& endpoint) {
  check_zmq(zmq_bind(sock_, endpoint.c_str()), "zmq_bind", endpoint);
  name_ = endpoint;
}

void ZmqSocket::connect(const std::string& endpoint) {
  check_zmq(zmq_connect(sock_, endpoint.c_str()), "zmq_connect", endpoint);
  name_ = endpoint;
}

void ZmqSocket::set(int option, int value) {
  check_zmq(zmq_setsockopt(sock_, option, &value, sizeof value), "zmq_setsockopt", name_);
}

void ZmqSocket::set(int option, int64_t value) {
  check_zmq(zmq_setsockopt(sock_, option, &value, sizeof value), "zmq_setsockopt", name_);
}

void ZmqSocket::set(int option, const std::string& value) {
  check_zmq(zmq_setsockopt(sock_, option, value.data(), value.size()), "zmq_setsockopt", name_);
}

std::string ZmqSocket::get_string(int option) const {
  char buf[512];
  size_t len = sizeof buf;
  check_zmq(zmq_getsockopt(sock_, option, buf, &len), "zmq_getsockopt", name_);
  return std::string(buf, len > 0 && buf[len - 1] == '\0' ? len - 1 : len);
}

bool ZmqSocket::send(const Multipart& frames) {
  for (size_t i = 0; i < frames.size(); ++i) {
    const int flags = ZMQ_DONTWAIT | (i + 1 < frames.size() ? ZMQ_SNDMORE : 0);
    if (zmq_send(sock_, frames[i].data(), frames[i].size(), flags) < 0) {
      const int err = zmq_errno();
      // The first frame decides: once one frame is queued ZeroMQ queues the rest atomically.
      if (err == EAGAIN || err == EHOSTUNREACH) return false;
      check_zmq(-1, "zmq_send", name_);
    }
  }
  return true;
}

std::optional<Multipart> ZmqSocket::recv(std::chrono::milliseconds timeout) {
  if (timeout.count() > 0) {
    ZmqSocket* self = this;
    if (!poll_readable({self}, timeout)) return std::nullopt;
  }
  Multipart frames;
  for (;;) {
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, sock_, ZMQ_DONTWAIT) < 0) {
      const int err = zmq_errno();
      zmq_msg_close(&msg);
      if (frames.empty() && (err == EAGAIN || err == EINTR)) return std::nullopt;
      check_zmq(-1, "zmq_msg_recv", name_);
    }
    frames.emplace_back(static_cast<const char*>(zmq_msg_data(&msg)), zmq_msg_size(&msg));
    const bool more = zmq_msg_more(&msg) != 0;
    zmq_msg_close(&msg);
    if (!more) return frames;
  }
}

std::optional<size_t> poll_readable(const std::vector<ZmqSocket*>& sockets, std::chrono::milliseconds timeout) {
  std::vector<zmq_pollitem_t> items(sockets.size());
  for (size_t i = 0; i < sockets.size(); ++i) items[i] = zmq_pollitem_t{sockets[i]->get(), 0, ZMQ_POLLIN, 0};
  const int rc = zmq_poll(items.data(), static_cast<int>(items.size()), static_cast<long>(timeout.count()));
  if (rc < 0) {
    if (zmq_errno() == EINTR) return std::nullopt;
    check_zmq(rc, "zmq_poll", sockets.empty() ? std::string("-") : sockets[0]->name());
  }
  for (size_t i = 0; i < items.size(); ++i)
    if (items[i].revents & ZMQ_POLLIN) return i;
  return std::nullopt;
}

}  // namespace harvest::coord
