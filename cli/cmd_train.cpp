// harvest train --config X [--set k=v]...: one worker, no coordinator, for quick experiments.
// The last line printed is a JSON summary.
#include <nlohmann/json.hpp>

#include <iostream>

#include "cli/commands.hpp"
#include "worker/trainer.hpp"

namespace harvest::cli {

void add_train_command(CLI::App& app) {
  auto options = std::make_shared<ConfigOptions>();
  auto* train = app.add_subcommand("train", "Train with one in-process worker (no coordinator); JSON summary last");
  options->add_to(*train);
  train->callback([options] {
    const TrainSummary s = train_single_process(options->load());
    std::cout << nlohmann::json{{"first_step", s.first_step},
                                {"steps", s.steps},
                                {"train_seconds", s.train_seconds},
                                {"clips_per_s", s.clips_per_s},
                                {"data_wait_fraction", s.data_wait_fraction},
                                {"skipped_steps", s.skipped_steps},
                                {"bad_samples", s.bad_samples},
                                {"final_loss", s.final_loss},
                                {"checkpoint", s.last_checkpoint}}
                     .dump()
              << std::endl;
  });
}

}  // namespace harvest::cli
