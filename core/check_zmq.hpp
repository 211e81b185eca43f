// ZeroMQ return-code wrapper (header-only: only targets that link libzmq include it).
#pragma once

#include <zmq.h>

#include <string>

#include "core/error.hpp"

namespace harvest {

// check_zmq(rc, "zmq_bind", endpoint): throws Runtime naming the call, the endpoint/peer and
// zmq_strerror(errno) when rc < 0.
inline int check_zmq(int rc, const char* call, const std::string& peer) {
  if (rc < 0) {
    const int err = zmq_errno();
    fail(ErrorKind::Runtime, call, "(", peer, ") failed: ", zmq_strerror(err), " (errno ", err, ")");
  }
  return rc;
}

}  // namespace harvest
