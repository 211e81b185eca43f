// The coordinator's resolved settings, taken from [coordinator] and [dist] once at start-up.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "core/config/config.hpp"

namespace harvest::coord {

struct CoordinatorSettings {
  std::string address;
  std::chrono::milliseconds heartbeat{100};
  int64_t miss_limit = 5;
  std::chrono::milliseconds step_deadline{300000};
  std::chrono::milliseconds rendezvous_wait{2000};   // wait for a replacement before shrinking
  std::chrono::milliseconds rendezvous_timeout{60000};  // rank 0 must offer backend info by then
  std::chrono::milliseconds reattach_grace{5000};    // journal members must heartbeat by then
  size_t max_message_bytes = 64u << 20;
  std::string journal;
  int64_t world_size = 1;
  int64_t min_workers = 1;
  int64_t max_workers = 1;
  // CURVE: key file paths (empty: plain TCP) and the allow-list of client public keys.
  std::string curve_server_public;
  std::string curve_server_secret;
  std::string curve_authorized_keys;
  // Evaluation during training (SweeperActor): committed steps that are a multiple of this, and
  // the final one, go to eval members; 0: none.
  int64_t eval_every_steps = 0;
  // Spare workers (beyond dist.max_workers) take eval jobs too: eval.spare_workers, and only
  // when eval.manifest names what to evaluate.
  bool eval_on_spares = false;
  int64_t train_steps = 0;
  // A committed `step` ends training (train.steps reached; never when train.steps is unset).
  bool is_final_step(uint64_t step) const { return train_steps > 0 && step >= static_cast<uint64_t>(train_steps); }
  // Coordinator::run returns 0 once training is finished and every member has left.
  bool exit_when_done = false;

  std::chrono::milliseconds lost_after() const { return heartbeat * miss_limit; }
};

// Resolves defaults that depend on other sections (journal under logging.run_dir, elastic
// bounds from dist.world_size) and checks cross-field rules; throws Config naming the keys.
CoordinatorSettings coordinator_settings(const Config& config);

}  // namespace harvest::coord
