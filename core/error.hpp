// Errors that carry context: what was being done, to which file/key/peer, with the values.
//
// Error kinds tell the caller what to do and map onto the process exit codes
// (docs/exit-codes.md): Usage and Config are the caller's fault (exit 2), Runtime is
// the world's fault (exit 1: missing file, peer gone, decode failure), Internal is ours.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace harvest {

enum class ErrorKind { Usage, Config, Runtime, Internal };

const char* to_string(ErrorKind kind);

// Exit status for an error of this kind: 2 usage/config, 1 otherwise.
int exit_code_for(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, std::string message)
      : std::runtime_error(std::move(message)), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

// cat(a, b, c...) streams every argument into one string.
template <class... Args>
std::string cat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}

template <class... Args>
[[noreturn]] void fail(ErrorKind kind, const Args&... args) {
  throw Error(kind, cat(args...));
}

namespace detail {
[[noreturn]] void assert_failed(const char* expr, const char* file, int line, const std::string& msg);
}  // namespace detail

}  // namespace harvest

// HARVEST_REQUIRE: the caller (user, config, peer) broke a precondition. Message says which.
#define HARVEST_REQUIRE(cond, kind, ...)                          \
  do {                                                            \
    if (!(cond)) ::harvest::fail(::harvest::ErrorKind::kind, __VA_ARGS__); \
  } while (0)

// HARVEST_ASSERT: our own invariant; reports file:line and the expression.
#define HARVEST_ASSERT(cond, ...)                                                         \
  do {                                                                                    \
    if (!(cond))                                                                          \
      ::harvest::detail::assert_failed(#cond, __FILE__, __LINE__, ::harvest::cat(__VA_ARGS__)); \
  } while (0)
