#include "coordinator/status.hpp"

#include <cstdio>
#include <sstream>

#include "coordinator/wire.hpp"

namespace harvest::coord {

nlohmann::json status_json(proto::StatusReply::Reader s) {
  nlohmann::json members = nlohmann::json::array();
  for (const auto m : s.getMembers()) {
    members.push_back({{"member_id", m.getMemberId()},
                       {"role", role_name(m.getRole())},
                       {"rank", m.getRank()},
                       {"host", m.getHost().cStr()},
                       {"pid", m.getPid()},
                       {"device", m.getDevice().cStr()},
                       {"state", state_name(m.getState())},
                       {"generation", m.getGeneration()},
                       {"step", m.getStep()},
                       {"last_seen_ms", m.getLastSeenMs()},
                       {"samples_per_sec", m.getSamplesPerSec()}});
  }
  char incarnation[17];
  std::snprintf(incarnation, sizeof incarnation, "%016llx", static_cast<unsigned long long>(s.getIncarnation()));
  return {{"generation", s.getGeneration()},
          {"world_size", s.getWorldSize()},
          {"phase", s.getPhase().cStr()},
          {"step", s.getStep()},
          {"samples_per_sec", s.getSamplesPerSec()},
          {"last_checkpoint", {{"step", s.getLastCheckpointStep()}, {"path", s.getLastCheckpointPath().cStr()}}},
          {"incarnation", incarnation},
          {"uptime_s", s.getUptimeS()},
          {"members", members}};
}

std::string status_text(proto::StatusReply::Reader s) {
  std::ostringstream out;
  char line[512];
  std::snprintf(line, sizeof line, "generation %llu (%s), world size %u, step %llu, %.1f samples/s, up %.0f s\n",
                static_cast<unsigned long long>(s.getGeneration()), s.getPhase().cStr(), s.getWorldSize(),
                static_cast<unsigned long long>(s.getStep()), s.getSamplesPerSec(), s.getUptimeS());
  out << line;
  if (s.getLastCheckpointStep() > 0)
    out << "last committed checkpoint: step " << s.getLastCheckpointStep() << " " << s.getLastCheckpointPath().cStr()
        << "\n";
  else
    out << "last committed checkpoint: none\n";
  std::snprintf(line, sizeof line, "%-6s %-7s %-5s %-20s %-8s %-12s %-4s %-8s %s\n", "member", "role", "rank", "host",
                "pid", "state", "gen", "step", "seen");
  out << line;
  for (const auto m : s.getMembers()) {
    const std::string rank = m.getRank() >= 0 ? std::to_string(m.getRank()) : "-";
    std::snprintf(line, sizeof line, "%-6llu %-7s %-5s %-20s %-8u %-12s %-4llu %-8llu %llu ms ago\n",
                  static_cast<unsigned long long>(m.getMemberId()), role_name(m.getRole()).c_str(), rank.c_str(),
                  m.getHost().cStr(), m.getPid(), state_name(m.getState()).c_str(),
                  static_cast<unsigned long long>(m.getGeneration()), static_cast<unsigned long long>(m.getStep()),
                  static_cast<unsigned long long>(m.getLastSeenMs()));
    out << line;
  }
  return out.str();
}

}  // namespace harvest::coord
