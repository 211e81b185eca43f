// harvest loader: one dataloader process. Two ways to run it:
// - started by its worker (data.loader_placement = worker; worker/loader_source.hpp) with its
//   whole assignment on the command line (--endpoint and the rest); not meant to be run by hand;
// - `harvest loader --config X [--set K=V ...] [--coordinator ADDR]` (data.loader_placement =
//   coordinator): it registers with the coordinator, which deals it to a worker; run by
//   `harvest run`, a Slurm step or a pod, on any host that reaches the workers and the data.
// Exit 0 on SIGTERM/SIGINT or when its worker is gone; a bad config, manifest or vocabulary exits
// 2/1 with the error on stderr.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "cli/commands.hpp"
#include "core/config/config.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "dataloader/ffmpeg_log.hpp"
#include "dataloader/loader.hpp"

namespace harvest::cli {

void add_loader_command(CLI::App& app) {
  auto o = std::make_shared<data::LoaderOptions>();
  auto coordinator = std::make_shared<std::string>();
  auto overrides = std::make_shared<std::vector<std::string>>();
  auto* cmd = app.add_subcommand(
      "loader",
      "A dataloader process: placed by the coordinator (--config [--coordinator]), or started by "
      "its worker with --endpoint and the rest");
  cmd->add_option("--config", o->config_file, "The run's config (TOML)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--coordinator", *coordinator,
                  "Coordinator address (default: coordinator.address); without --endpoint only");
  auto* set = cmd->add_option("--set", *overrides,
                              "Override a key: section.key=value (repeatable); without --endpoint only")
                  ->type_name("KEY=VALUE");
  auto* endpoint =
      cmd->add_option("--endpoint", o->endpoint, "Worker-started: the worker's socket for it");
  // A worker-started loader reads the resolved config its worker wrote: no overrides.
  set->excludes(endpoint);
  const std::vector<CLI::Option*> assignment = {
      cmd->add_option("--rank", o->rank, "Worker-started: worker rank it feeds"),
      cmd->add_option("--world-size", o->world_size, "Worker-started: workers in the group"),
      cmd->add_option("--index", o->index, "Worker-started: this loader among the worker's"),
      cmd->add_option("--count", o->count, "Worker-started: the worker's loaders"),
      cmd->add_option("--generation", o->generation, "Worker-started: incarnation number"),
      cmd->add_option("--epoch", o->start.epoch, "Worker-started: sampler epoch of its first batch"),
      cmd->add_option("--cursor", o->start.cursor, "Worker-started: sampler cursor of it"),
      cmd->add_option("--first-batch", o->first_batch, "Worker-started: its global index")};
  for (CLI::Option* option : assignment) {
    option->needs(endpoint);
    endpoint->needs(option);
  }
  cmd->callback([o, coordinator, overrides, endpoint] {
    const bool placed = endpoint->count() == 0;
    init_logging(LogIdentity{"loader", placed ? -1 : o->rank * o->count + o->index},
                 spdlog::get_level());
    data::route_ffmpeg_logs();
    const int code =
        placed ? data::run_placed_loader(load_config(o->config_file, *overrides), o->config_file,
                                         *coordinator)
               : data::run_loader(*o);
    spdlog::default_logger()->flush();
    std::fflush(nullptr);
    // An abandoned (hung) decode thread may still run: leave without running static destructors.
    std::_Exit(code);
  });
}

}  // namespace harvest::cli
