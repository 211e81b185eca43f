// harvest loader: one dataloader process, started by its worker (worker/loader_source.hpp) with
// everything on the command line; not meant to be run by hand. Exit 0 on SIGTERM or when the
// worker is gone; a bad config, manifest or vocabulary exits 2/1 with the error on stderr.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "cli/commands.hpp"
#include "core/log.hpp"
#include "dataloader/ffmpeg_log.hpp"
#include "dataloader/loader.hpp"

namespace harvest::cli {

void add_loader_command(CLI::App& app) {
  auto o = std::make_shared<data::LoaderOptions>();
  auto* cmd = app.add_subcommand(
      "loader", "A dataloader process feeding one worker (started by the worker, not by hand)");
  cmd->add_option("--config", o->config_file, "The run's resolved config (TOML)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--rank", o->rank, "Worker rank it feeds")->required();
  cmd->add_option("--world-size", o->world_size, "Workers in the group")->required();
  cmd->add_option("--index", o->index, "This loader among the worker's loaders")->required();
  cmd->add_option("--count", o->count, "The worker's loaders (data.loaders_per_worker)")
      ->required();
  cmd->add_option("--endpoint", o->endpoint, "The worker's socket for this loader")->required();
  cmd->add_option("--generation", o->generation, "Incarnation number, stamped on every message")
      ->required();
  cmd->add_option("--epoch", o->start.epoch, "Sampler epoch of its first batch")->required();
  cmd->add_option("--cursor", o->start.cursor, "Sampler cursor of its first batch")->required();
  cmd->add_option("--first-batch", o->first_batch, "Global index of its first batch")->required();
  cmd->callback([o] {
    init_logging(LogIdentity{"loader", o->rank * o->count + o->index}, spdlog::get_level());
    data::route_ffmpeg_logs();
    const int code = data::run_loader(*o);
    spdlog::default_logger()->flush();
    std::fflush(nullptr);
    // An abandoned (hung) decode thread may still run: leave without running static destructors.
    std::_Exit(code);
  });
}

}  // namespace harvest::cli
