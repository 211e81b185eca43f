#include "coordinator/settings.hpp"

#include "core/error.hpp"

namespace harvest::coord {

CoordinatorSettings coordinator_settings(const Config& config) {
  const auto& c = config.coordinator;
  CoordinatorSettings s;
  s.address = c.address;
  s.heartbeat = std::chrono::milliseconds(c.heartbeat_ms);
  s.miss_limit = c.miss_limit;
  s.step_deadline = std::chrono::milliseconds(static_cast<int64_t>(c.step_deadline_s * 1000.0));
  s.rendezvous_wait = std::chrono::milliseconds(static_cast<int64_t>(c.rendezvous_wait_s * 1000.0));
  s.rendezvous_timeout = std::chrono::milliseconds(static_cast<int64_t>(config.dist.timeout_s * 1000.0));
  s.reattach_grace = std::chrono::milliseconds(static_cast<int64_t>(c.reattach_grace_s * 1000.0));
  s.max_message_bytes = static_cast<size_t>(c.max_message_mb) << 20;
  s.journal = c.journal.empty() ? config.logging.run_dir + "/journal.log" : c.journal;
  s.world_size = config.dist.world_size;
  s.min_workers = config.dist.min_workers > 0 ? config.dist.min_workers : config.dist.world_size;
  s.max_workers = config.dist.max_workers > 0 ? config.dist.max_workers : config.dist.world_size;
  HARVEST_REQUIRE(s.min_workers <= s.world_size && s.world_size <= s.max_workers, Config,
                  "dist.min_workers (", s.min_workers, ") <= dist.world_size (", s.world_size,
                  ") <= dist.max_workers (", s.max_workers, ") does not hold");
  s.eval_every_steps = config.eval.every_steps;
  s.eval_on_spares = config.eval.spare_workers && !config.eval.manifest.empty();
  s.train_steps = config.train.steps;
  s.exit_when_done = config.coordinator.exit_when_done;
  s.curve_server_public = c.curve_server_public;
  s.curve_server_secret = c.curve_server_secret;
  s.curve_authorized_keys = c.curve_authorized_keys;
  HARVEST_REQUIRE(s.curve_server_public.empty() == s.curve_server_secret.empty(), Config,
                  "coordinator.curve_server_public and coordinator.curve_server_secret must be set together");
  HARVEST_REQUIRE(s.curve_authorized_keys.empty() || !s.curve_server_secret.empty(), Config,
                  "coordinator.curve_authorized_keys needs coordinator.curve_server_public/curve_server_secret");
  return s;
}

}  // namespace harvest::coord
