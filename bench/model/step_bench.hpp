// `harvest bench step` and harvest_step_bench: median forward + backward + AdamW step time of the
// video-text model per patch-drop ratio (ratios interleaved), the video encoder's forward +
// backward alone, and the same step in PyTorch eager (bench/reference/step_reference.py) on the
// same shapes and device. On CUDA, optionally under bf16 autocast, with peak device memory, model
// FLOPs per step and MFU against a stated peak.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "model/options.hpp"

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
  std::string python = HARVEST_PYTHON;  // the project's .venv (scripts/setup.sh)
  std::string reference_script;  // empty: the source tree's bench/reference/step_reference.py
  std::string device = "cpu";     // cpu | cuda (cuda:0); the reference runs on the same device
  bool bf16 = false;              // bf16 autocast (CUDA only, as in training): set_bf16_autocast
  // The device's dense peak for MFU, in TFLOP/s. The default is H100 SXM's bf16 dense tensor-core
  // peak; pass the right one for other cards and for fp32 runs (MFU is meaningless on a CPU).
  double peak_tflops = 989.0;
};

// Model FLOPs of one training step (forward + backward) at `kept` video patches per clip; the
// formula is beside the definition (step_bench.cpp).
double step_flops(const ModelOptions& model, int64_t batch, int64_t kept, bool freeze_text);

// Runs the benchmark; progress goes to the log, the result is the JSON the command prints.
nlohmann::json run_step_bench(const StepBenchOptions& options);

}  // namespace harvest::bench
