// `harvest bench step`: median forward + backward + AdamW step time of the video-text model per
// patch-drop ratio (ratios interleaved), the video encoder's forward + backward alone, and the
// same step in PyTorch eager (bench/reference/step_reference.py) on the same shapes.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace harvest::bench {

struct StepBenchOptions {
  std::string preset = "S/16";
  int64_t size = 112;
  int64_t frames = 8;
  int64_t batch = 4;
  std::vector<double> drops = {0.0, 0.5, 0.75, 0.9};
  bool freeze_text = false;
  bool libtorch_adamw = false;  // LibTorch's torch::optim::AdamW instead of harvest's FusedAdamW
  int repeats = 5;
  int warmup = 1;
  int threads = 0;  // LibTorch intra-op threads; 0: one per core
  bool reference = true;
  std::string python = "/usr/bin/python3";
  std::string reference_script;  // empty: the source tree's bench/reference/step_reference.py
};

// Runs the benchmark; progress goes to the log, the result is the JSON the command prints.
nlohmann::json run_step_bench(const StepBenchOptions& options);

}  // namespace harvest::bench
