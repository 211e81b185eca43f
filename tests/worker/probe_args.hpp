// Shared by the worker test probes: "--key value" arguments and the group they ask for
// (local for --world 1, Gloo over loopback at --port otherwise).
#pragma once

#include <map>
#include <memory>
#include <string>

#include "worker/comm_group.hpp"

namespace harvest::test {

class ProbeArgs {
 public:
  ProbeArgs(int argc, char** argv) {
    for (int i = 1; i + 1 < argc; i += 2) values_[argv[i]] = argv[i + 1];
  }
  std::string get(const std::string& key, const std::string& fallback) const {
    auto it = values_.find(key);
    return it == values_.end() ? fallback : it->second;
  }
  bool has(const std::string& key) const { return values_.count(key) > 0; }
  int rank() const { return std::stoi(get("--rank", "0")); }
  int world() const { return std::stoi(get("--world", "1")); }

  std::unique_ptr<CommGroup> make_group(double timeout_s) const {
    if (world() == 1) return make_local_group();
    GlooRendezvous r;
    r.port = std::stoi(get("--port", "29600"));
    r.rank = rank();
    r.world_size = world();
    r.timeout_s = timeout_s;
    return make_gloo_group(r);
  }

 private:
  std::map<std::string, std::string> values_;
};

}  // namespace harvest::test
