#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "tests/support/run.hpp"

using harvest::test::run;
namespace fs = std::filesystem;

TEST_CASE("harvest train: synthetic data, learned vocab, checkpoints, resume", "[worker][cli]") {
  const std::string exe = HARVEST_EXE;
  const fs::path dir = fs::temp_directory_path() / ("harvest-train-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const std::string d = dir.string();
  REQUIRE(run(exe + " data synth --out " + d + "/data --clips 60 --seed 3 --size 32 --frames 4").exit_code == 0);
  REQUIRE(run(exe + " data vocab --manifest " + d + "/data/train.jsonl --size 700 --out " + d + "/vocab.txt.gz")
              .exit_code == 0);
  const std::string common = exe + " train --set data.train_manifest=" + d + "/data/train.jsonl --set model.vocab=" +
                             d + "/vocab.txt.gz --set model.image_size=32 --set model.frames=4 "
                             "--set model.context_length=16 --set model.freeze_text=false --set data.batch_size=4 "
                             "--set checkpoint.every_steps=2 --set train.device=cpu --set logging.run_dir=" + d + "/run";
  const auto first = run(common + " --set train.steps=4");
  INFO(first.output);
  REQUIRE(first.exit_code == 0);
  CHECK_THAT(first.output, Catch::Contains("\"first_step\":0") && Catch::Contains("\"steps\":4"));
  REQUIRE(fs::exists(dir / "run" / "metrics.jsonl"));
  {
    std::ifstream metrics(dir / "run" / "metrics.jsonl");
    const std::string text((std::istreambuf_iterator<char>(metrics)), std::istreambuf_iterator<char>());
    CHECK_THAT(text, Catch::Contains("\"comm_wait_s\":") && Catch::Contains("\"buckets\":") &&
                         Catch::Contains("\"buckets_overlapped\":"));
  }
  CHECK(fs::exists(dir / "run" / "config.toml"));
  CHECK(run(exe + " ckpt verify " + d + "/run/checkpoints").exit_code == 0);

  // The resumed part ends with an unmasked step (patch dropping off for the last step).
  const auto resumed = run(common + " --set train.steps=6 --set train.unmasked_steps=1");
  INFO(resumed.output);
  REQUIRE(resumed.exit_code == 0);
  CHECK_THAT(resumed.output, Catch::Contains("\"first_step\":4") && Catch::Contains("\"steps\":6"));
  CHECK_THAT(resumed.output,
             Catch::Contains("step 5: unmasked phase, patch dropping off for the last 1 steps"));

  // train.deterministic turns LibTorch's deterministic algorithms on; every op of the step has one.
  const auto deterministic = run(common + " --set train.steps=2 --set train.deterministic=true --set logging.run_dir=" +
                                 d + "/run-deterministic");
  INFO(deterministic.output);
  CHECK(deterministic.exit_code == 0);
  CHECK_THAT(deterministic.output, Catch::Contains("deterministic kernels on"));

  // A manifest whose every row is unusable stops with an error naming it and the reasons, with
  // loader processes and without (it used to skip samples forever).
  std::ofstream(dir / "bad.jsonl") << "{\"video\": \"gone1.mp4\", \"caption\": \"a\"}\n"
                                      "{\"video\": \"gone2.mp4\", \"caption\": \"b\"}\n";
  for (const char* loaders : {"0", "1"}) {
    INFO("data.loaders_per_worker = " << loaders);
    const auto all_bad = run("timeout 300 " + common + " --set train.steps=2 --set data.train_manifest=" + d +
                             "/bad.jsonl --set data.loaders_per_worker=" + loaders + " --set logging.run_dir=" + d +
                             "/run-bad-" + loaders);
    INFO(all_bad.output);
    CHECK(all_bad.exit_code == 2);
    CHECK_THAT(all_bad.output, Catch::Contains("bad.jsonl: more than 50 % of the last 1000 samples were bad") &&
                                   Catch::Contains("missing x"));
  }

  // The device is checked before anything trains (CUDA_VISIBLE_DEVICES= hides every GPU, so this
  // holds on GPU machines too).
  const auto no_gpu = run("CUDA_VISIBLE_DEVICES= " + common + " --set train.device=cuda");
  CHECK(no_gpu.exit_code == 2);
  CHECK_THAT(no_gpu.output, Catch::Contains("train.device = cuda: no CUDA device is visible"));
  const auto bf16_cpu = run("CUDA_VISIBLE_DEVICES= " + common +
                            " --set train.device=auto --set train.precision=bf16");
  CHECK(bf16_cpu.exit_code == 2);
  CHECK_THAT(bf16_cpu.output, Catch::Contains("train.precision = bf16 needs a CUDA device"));

  // `embed` takes the checkpoint directory (newest committed), a step folder or a part file.
  const auto embedded = run(exe + " embed --checkpoint " + d + "/run/checkpoints --text \"a red square\" --json");
  INFO(embedded.output);
  CHECK(embedded.exit_code == 0);
  CHECK_THAT(embedded.output, Catch::Contains("\"text\":[["));
  const auto not_checkpoint = run(exe + " embed --checkpoint " + d + "/data --text x --json");
  CHECK(not_checkpoint.exit_code == 2);
  CHECK_THAT(not_checkpoint.output, Catch::Contains(d + "/data"));

  const auto no_vocab = run(exe + " train --set data.train_manifest=" + d + "/data/train.jsonl");
  CHECK(no_vocab.exit_code == 2);
  CHECK_THAT(no_vocab.output, Catch::Contains("model.vocab: required"));
  fs::remove_all(dir);
}
