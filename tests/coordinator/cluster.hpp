// Test fixture: a coordinator process and fake peers (coordinator_test_node) on a loopback port,
// with status polling. Every wait has a deadline; timings are measured with a steady clock.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>

#include "coordinator/client.hpp"
#include "core/time.hpp"
#include "process.hpp"

namespace harvest::test {

inline int free_tcp_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

using StatusPtr = std::unique_ptr<coord::InMessage>;

class Cluster {
 public:
  explicit Cluster(std::vector<std::string> coordinator_sets = {})
      : sets_(std::move(coordinator_sets)), peer_sets_(sets_) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "harvest-coord-XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
    address_ = "tcp://127.0.0.1:" + std::to_string(free_tcp_port());
  }
  ~Cluster() {
    peers_.clear();
    coordinator_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Peers get the coordinator's --set list unless told otherwise (e.g. CURVE tests).
  void set_peer_sets(std::vector<std::string> sets) { peer_sets_ = std::move(sets); }
  const std::string& address() const { return address_; }
  const std::string& dir() const { return dir_; }
  std::string journal() const { return dir_ + "/journal.log"; }

  std::vector<std::string> common_sets() const {
    return {"--set", "coordinator.address=" + address_, "--set", "coordinator.journal=" + journal(), "--set",
            "logging.level=info"};
  }

  // Starts (or restarts) the coordinator and waits until it answers a status request.
  void start_coordinator(const coord::CurveClientKeys& curve = {}) {
    std::vector<std::string> argv{HARVEST_COORDINATOR_NODE, "coordinator"};
    for (const auto& s : common_sets()) argv.push_back(s);
    for (const auto& s : sets_) {
      argv.push_back("--set");
      argv.push_back(s);
    }
    coordinator_ = std::make_unique<ChildProcess>(argv, dir_ + "/coordinator." + std::to_string(starts_++) + ".log");
    if (!curve.enabled() && !status(std::chrono::seconds(10)))
      throw std::runtime_error("coordinator did not answer:\n" + coordinator_->output());
  }
  ChildProcess& coordinator() { return *coordinator_; }

  ChildProcess& start_peer(const std::string& name, std::vector<std::string> extra) {
    std::vector<std::string> argv{HARVEST_COORDINATOR_NODE, "peer", "--address", address_};
    for (const auto& s : common_sets()) argv.push_back(s);
    for (const auto& s : peer_sets_) {
      argv.push_back("--set");
      argv.push_back(s);
    }
    for (auto& e : extra) argv.push_back(std::move(e));
    peers_[name] = std::make_unique<ChildProcess>(argv, dir_ + "/" + name + ".log");
    return *peers_[name];
  }
  ChildProcess& peer(const std::string& name) { return *peers_.at(name); }

  std::optional<StatusPtr> status(std::chrono::milliseconds timeout = std::chrono::milliseconds(1000),
                                  const coord::CurveClientKeys& curve = {}) {
    return coord::query_status(address_, curve, timeout);
  }

  // Polls status every 10 ms until `pred` holds; returns the milliseconds it took, or nullopt.
  std::optional<double> wait_for(const std::function<bool(proto::StatusReply::Reader)>& pred,
                                 std::chrono::milliseconds timeout) {
    const Stopwatch clock;
    const Deadline deadline(timeout);
    while (!deadline.expired()) {
      auto s = status(std::chrono::milliseconds(500));
      if (s && pred((*s)->body().getStatusReply())) return clock.seconds() * 1000.0;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return std::nullopt;
  }

  std::string logs() {
    std::string out = "--- coordinator ---\n" + (coordinator_ ? coordinator_->output() : "");
    for (auto& [name, p] : peers_) out += "--- " + name + " ---\n" + p->output();
    return out;
  }

 private:
  std::vector<std::string> sets_;
  std::vector<std::string> peer_sets_;
  std::string dir_;
  std::string address_;
  int starts_ = 0;
  std::unique_ptr<ChildProcess> coordinator_;
  std::map<std::string, std::unique_ptr<ChildProcess>> peers_;
};

// Counts of members by role/state in a status reply.
inline size_t count_members(proto::StatusReply::Reader s, proto::Role role, proto::MemberState state) {
  size_t n = 0;
  for (const auto m : s.getMembers())
    if (m.getRole() == role && m.getState() == state) ++n;
  return n;
}

// True when `n` workers run generation `g` (each reports running in the generation the
// coordinator announced) and the coordinator calls the group running.
inline bool workers_running(proto::StatusReply::Reader s, size_t n, uint64_t generation) {
  size_t running = 0;
  for (const auto m : s.getMembers())
    if (m.getRole() == proto::Role::WORKER && m.getState() == proto::MemberState::RUNNING &&
        m.getGeneration() == generation)
      ++running;
  return s.getGeneration() == generation && running == n && s.getWorldSize() == n &&
         std::string(s.getPhase().cStr()) == "running";
}

}  // namespace harvest::test
