// Syscall wrappers: turn -1/errno into an Error naming the call, the object and the reason.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>

#include "core/error.hpp"

namespace harvest {

// check_sys(rc, "open", path): throws Runtime "open(<path>) failed: <strerror> (errno N)" when rc < 0.
template <class T>
T check_sys(T rc, const char* call, const std::string& object) {
  if (rc < 0) {
    const int err = errno;
    fail(ErrorKind::Runtime, call, "(", object, ") failed: ", std::strerror(err), " (errno ", err,
         ")");
  }
  return rc;
}

}  // namespace harvest
