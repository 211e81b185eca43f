#include "core/error.hpp"

namespace harvest {

const char* to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::Usage: return "usage error";
    case ErrorKind::Config: return "config error";
    case ErrorKind::Runtime: return "error";
    case ErrorKind::Internal: return "internal error";
  }
  return "error";
}

int exit_code_for(ErrorKind kind) {
  return (kind == ErrorKind::Usage || kind == ErrorKind::Config) ? 2 : 1;
}

namespace detail {
void assert_failed(const char* expr, const char* file, int line, const std::string& msg) {
  throw Error(ErrorKind::Internal,
              cat(file, ":", line, ": assertion `", expr, "` failed", msg.empty() ? "" : ": ", msg,
                  " (this is a harvest bug; please report it)"));
}
}  // namespace detail

}  // namespace harvest
