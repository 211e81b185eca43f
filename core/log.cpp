#include "core/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <memory>

#include "core/error.hpp"

namespace harvest {
namespace {

std::string pattern_for(const std::string& role, int rank) {
  const std::string r = rank < 0 ? "-" : std::to_string(rank);
  return "%Y-%m-%d %H:%M:%S.%e [" + role + ":" + r + "] %-5l %v";
}

}  // namespace

spdlog::level::level_enum parse_log_level(const std::string& text, const std::string& flag) {
  if (text == "trace") return spdlog::level::trace;
  if (text == "debug") return spdlog::level::debug;
  if (text == "info") return spdlog::level::info;
  if (text == "warn" || text == "warning") return spdlog::level::warn;
  if (text == "error") return spdlog::level::err;
  if (text == "off") return spdlog::level::off;
  fail(ErrorKind::Usage, flag, ": unknown log level '", text,
       "' (expected trace, debug, info, warn, error or off)");
}

void init_logging(const LogIdentity& who, spdlog::level::level_enum level) {
  // The logger's name is the role: set_log_rank() rebuilds the pattern from it.
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>(spdlog::color_mode::automatic);
  auto logger = std::make_shared<spdlog::logger>(who.role, std::move(sink));
  logger->set_pattern(pattern_for(who.role, who.rank));
  logger->set_level(level);
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
}

void set_log_rank(int rank) {
  auto logger = spdlog::default_logger();
  logger->set_pattern(pattern_for(logger->name(), rank));
}

}  // namespace harvest
