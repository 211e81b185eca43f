// harvest coordinator | status | checkpoint | keygen: the control plane's commands.
#include <nlohmann/json.hpp>

#include <iostream>

#include "cli/commands.hpp"
#include "coordinator/client.hpp"
#include "coordinator/coordinator.hpp"
#include "coordinator/curve.hpp"
#include "coordinator/signal_watcher.hpp"
#include "coordinator/status.hpp"
#include "core/log.hpp"

namespace harvest::cli {
namespace {

// The flags of the commands that ask a running coordinator something (status, checkpoint).
struct AskArgs {
  explicit AskArgs(double default_timeout_s) : timeout_s(default_timeout_s) {}
  ConfigOptions config;
  std::string address;
  bool json = false;
  double timeout_s;

  void add_to(CLI::App& cmd, const std::string& json_help, const std::string& timeout_help) {
    cmd.add_option("--coordinator", address, "Coordinator endpoint (default: coordinator.address)");
    cmd.add_flag("--json", json, json_help);
    cmd.add_option("--timeout", timeout_s, timeout_help)->capture_default_str();
    config.add_to(cmd);
  }
  std::string endpoint(const Config& c) const { return address.empty() ? c.coordinator.address : address; }
  std::chrono::milliseconds timeout() const {
    return std::chrono::milliseconds(static_cast<long long>(timeout_s * 1000.0));
  }
};

}  // namespace

void add_coordinator_commands(CLI::App& app) {
  auto coordinator_opts = std::make_shared<ConfigOptions>();
  auto* coordinator = app.add_subcommand(
      "coordinator", "Run the coordinator (membership, rendezvous, checkpoint commits) until SIGINT/SIGTERM");
  coordinator_opts->add_to(*coordinator);
  coordinator->callback([coordinator_opts] {
    const Config config = coordinator_opts->load();
    init_logging(LogIdentity{"coordinator", -1}, parse_log_level(config.logging.level, "logging.level"));
    coord::SignalWatcher signals;
    coord::Coordinator node(coord::coordinator_settings(config));
    const int rc = node.run(signals.stop());
    if (rc != 0) fail(ErrorKind::Runtime, "coordinator stopped: an actor failed (see the log above)");
  });

  auto status_args = std::make_shared<AskArgs>(3.0);
  auto* status = app.add_subcommand("status", "Show a running job: members, generation, step, throughput, checkpoint");
  status_args->add_to(*status, "Print JSON instead of a table", "Seconds to wait for the reply");
  status->callback([status_args] {
    const Config config = status_args->config.load();
    const std::string endpoint = status_args->endpoint(config);
    const auto reply = coord::query_status(endpoint, coord::client_curve_keys(config), status_args->timeout());
    HARVEST_REQUIRE(reply.has_value(), Runtime, "no status reply from ", endpoint, " within ", status_args->timeout_s,
                    " s (is the coordinator running there? with CURVE on, pass --config with the keys)");
    const auto s = (*reply)->body().getStatusReply();
    if (status_args->json)
      std::cout << coord::status_json(s).dump(2) << "\n";
    else
      std::cout << coord::status_text(s);
  });

  auto ckpt_args = std::make_shared<AskArgs>(600.0);
  auto* checkpoint = app.add_subcommand(
      "checkpoint", "Ask a running job for a checkpoint now; waits until it is committed");
  ckpt_args->add_to(*checkpoint, "Print the committed checkpoint as JSON", "Seconds to wait for the commit");
  checkpoint->callback([ckpt_args] {
    const Config config = ckpt_args->config.load();
    const std::string endpoint = ckpt_args->endpoint(config);
    const auto reply = coord::request_checkpoint(endpoint, coord::client_curve_keys(config), ckpt_args->timeout());
    HARVEST_REQUIRE(reply.has_value(), Runtime, "no checkpoint committed through ", endpoint, " within ",
                    ckpt_args->timeout_s, " s (is a job training there? with CURVE on, pass --config with the keys)");
    const auto c = (*reply)->body().getCheckpointCommit();
    if (ckpt_args->json) {
      std::cout << nlohmann::json{{"step", c.getStep()},
                                  {"path", c.getPath().cStr()},
                                  {"generation", c.getGeneration()}}
                       .dump()
                << "\n";
    } else {
      std::cout << "checkpoint step " << c.getStep() << " committed: " << c.getPath().cStr() << "\n";
    }
  });

  auto prefix = std::make_shared<std::string>();
  auto* keygen = app.add_subcommand("keygen", "Create a CURVE key pair: PREFIX.public and PREFIX.secret (Z85)");
  keygen->add_option("--out", *prefix, "Path prefix of the two key files")->required();
  keygen->callback([prefix] {
    coord::write_keypair(coord::generate_keypair(), *prefix);
    std::cout << *prefix << ".public\n" << *prefix << ".secret\n";
  });
}

}  // namespace harvest::cli
