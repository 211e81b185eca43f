#include "worker/trainer.hpp"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>

#include "checkpoint/from_config.hpp"
#include "core/error.hpp"
#include "model/tokenizer/tokenizer.hpp"

namespace harvest {
namespace fs = std::filesystem;

TrainSummary train_single_process(const Config& config) {
  HARVEST_REQUIRE(config.dist.world_size == 1, Config,
                  "harvest train runs one worker; dist.world_size is ", config.dist.world_size,
                  " (use harvest run for several)");
  require_trainable(config);
  at::set_num_threads(intra_op_threads(config.train));
  fs::create_directories(config.logging.run_dir);
  std::ofstream(fs::path(config.logging.run_dir) / "config.toml") << to_toml(config);

  const auto tokenizer =
      std::make_shared<const tokenizer::Tokenizer>(tokenizer::Tokenizer::load(config.model.vocab));
  auto group = make_local_group();
  const torch::Device device = training_device(config.train, local_device_index(-1));
  RankTrainer trainer(config, tokenizer, *group, device, checkpoint::saver_options(config));
  const auto resume = checkpoint::resolve_resume(config);
  if (resume) {
    for (const auto& why : resume->skipped) spdlog::warn("not resuming from {}", why);
    trainer.resume(resume->parts.at(0));
  }
  if (!resume && trainer.initial_save_due()) trainer.save();

  while (!trainer.finished()) {
    trainer.step();
    if (trainer.checkpoint_due()) trainer.save();
  }
  trainer.save();
  trainer.wait_saved();

  TrainSummary summary = trainer.summary();
  summary.last_checkpoint =
      checkpoint::checkpoint_folder(checkpoint::checkpoint_dir(config), summary.steps).string();
  return summary;
}

}  // namespace harvest
