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

  auto status_opts = std::make_shared<ConfigOptions>();
  auto address = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto timeout_s = std::make_shared<double>(3.0);
  auto* status = app.add_subcommand("status", "Show a running job: members, generation, step, throughput, checkpoint");
  status->add_option("--coordinator", *address, "Coordinator endpoint (default: coordinator.address)");
  status->add_flag("--json", *json, "Print JSON instead of a table");
  status->add_option("--timeout", *timeout_s, "Seconds to wait for the reply")->capture_default_str();
  status_opts->add_to(*status);
  status->callback([status_opts, address, json, timeout_s] {
    const Config config = status_opts->load();
    const std::string endpoint = address->empty() ? config.coordinator.address : *address;
    const auto reply = coord::query_status(
        endpoint, coord::client_curve_keys(config),
        std::chrono::milliseconds(static_cast<long long>(*timeout_s * 1000.0)));
    HARVEST_REQUIRE(reply.has_value(), Runtime, "no status reply from ", endpoint, " within ", *timeout_s,
                    " s (is the coordinator running there? with CURVE on, pass --config with the keys)");
    const auto s = (*reply)->body().getStatusReply();
    if (*json)
      std::cout << coord::status_json(s).dump(2) << "\n";
    else
      std::cout << coord::status_text(s);
  });

  auto ckpt_opts = std::make_shared<ConfigOptions>();
  auto ckpt_address = std::make_shared<std::string>();
  auto ckpt_json = std::make_shared<bool>(false);
  auto ckpt_timeout_s = std::make_shared<double>(600.0);
  auto* checkpoint = app.add_subcommand(
      "checkpoint", "Ask a running job for a checkpoint now; waits until it is committed");
  checkpoint->add_option("--coordinator", *ckpt_address, "Coordinator endpoint (default: coordinator.address)");
  checkpoint->add_flag("--json", *ckpt_json, "Print the committed checkpoint as JSON");
  checkpoint->add_option("--timeout", *ckpt_timeout_s, "Seconds to wait for the commit")->capture_default_str();
  ckpt_opts->add_to(*checkpoint);
  checkpoint->callback([ckpt_opts, ckpt_address, ckpt_json, ckpt_timeout_s] {
    const Config config = ckpt_opts->load();
    const std::string endpoint = ckpt_address->empty() ? config.coordinator.address : *ckpt_address;
    const auto reply = coord::request_checkpoint(
        endpoint, coord::client_curve_keys(config),
        std::chrono::milliseconds(static_cast<long long>(*ckpt_timeout_s * 1000.0)));
    HARVEST_REQUIRE(reply.has_value(), Runtime, "no checkpoint committed through ", endpoint, " within ",
                    *ckpt_timeout_s, " s (is a job training there? with CURVE on, pass --config with the keys)");
    const auto c = (*reply)->body().getCheckpointCommit();
    if (*ckpt_json) {
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
