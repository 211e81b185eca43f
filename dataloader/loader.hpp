// The loader process (`harvest loader`, started by its worker; docs/data.md "Loader processes").
// Loader k of N feeding worker rank r builds batches k, k+N, k+2N, ... of that rank's shard
// stream: batch g covers the data.batch_size shard positions starting at g x batch_size (epochs
// roll over inside the stream), decoded on a DecodePool, bad samples listed in the header instead
// of replaced (the worker applies the skip rule when it assembles training batches, so batches
// come out the same whatever the number of loaders). It connects a DEALER to the worker's
// endpoint, says hello, and sends only as many batches as the worker has granted credit for.
#pragma once

#include <cstdint>
#include <string>

#include "core/config/config.hpp"
#include "dataloader/sampler.hpp"

namespace harvest::data {

struct LoaderOptions {
  std::string config_file;  // the run's resolved config (TOML)
  int rank = 0, world_size = 1;
  int index = 0, count = 1;  // this loader among the worker's loaders
  std::string endpoint;      // the worker's socket for this loader (ipc://...)
  uint64_t generation = 0;   // incarnation, stamped on every message
  SamplerState start;        // shard position of this loader's first batch
  uint64_t first_batch = 0;  // its global index (later ones: + count each)
};

// Runs until SIGTERM/SIGINT or until the parent process is gone; returns the exit status.
// Errors (bad config, manifest, vocabulary) throw.
int run_loader(const LoaderOptions& options);

// A loader the coordinator places (data.loader_placement = coordinator): registers with the
// coordinator at `coordinator_address` (empty: the config's coordinator.address) as a loader,
// follows its ShardPlan to the worker it feeds, says hello with its member id and builds what
// that worker's `start` says, from the position it names, until the next `start` or plan. Runs
// until SIGTERM/SIGINT or the coordinator's shutdown (leaves cleanly, exit 0). `origin` names
// where `config` came from, for messages.
int run_placed_loader(const Config& config, const std::string& origin,
                      const std::string& coordinator_address);

}  // namespace harvest::data
