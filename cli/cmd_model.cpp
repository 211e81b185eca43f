// harvest bench step: the training-step benchmark of the video-text model (bench/model/).
#include <iomanip>
#include <iostream>
#include <memory>

#include "bench/model/step_bench.hpp"
#include "cli/commands.hpp"

namespace harvest::cli {

void add_model_commands(CLI::App& app) {
  auto& bench = command_group(app, "bench", "Benchmarks (JSON on the last line)");
  auto opt = std::make_shared<bench::StepBenchOptions>();
  auto json_only = std::make_shared<bool>(false);
  auto no_reference = std::make_shared<bool>(false);
  auto* step = bench.add_subcommand("step",
                                    "Median forward+backward+AdamW step per patch-drop ratio "
                                    "(interleaved), the video encoder alone, "
                                    "and the same step in PyTorch eager");
  step->add_option("--preset", opt->preset, "tiny, S/16, B/16 or L/14")
      ->check(CLI::IsMember({"tiny", "S/16", "B/16", "L/14"}))
      ->capture_default_str();
  step->add_option("--size", opt->size, "Input side in pixels")->capture_default_str();
  step->add_option("--frames", opt->frames, "Frames per clip")->capture_default_str();
  step->add_option("--batch", opt->batch, "Clips per step")->capture_default_str();
  step->add_option("--drop", opt->drops, "Patch-drop ratios, comma-separated")
      ->delimiter(',')
      ->capture_default_str();
  step->add_flag("--freeze-text", opt->freeze_text, "Freeze the text tower (the recipe's default)");
  step->add_flag("--libtorch-adamw", opt->libtorch_adamw,
                 "Step with LibTorch's AdamW instead of harvest's fused one (for comparison)");
  step->add_option("--repeats", opt->repeats, "Timed rounds")->capture_default_str();
  step->add_option("--warmup", opt->warmup, "Untimed rounds first")->capture_default_str();
  step->add_option("--threads", opt->threads, "LibTorch intra-op threads; 0: one per core")
      ->capture_default_str();
  step->add_flag("--no-reference", *no_reference, "Skip the PyTorch eager reference");
  step->add_option("--python", opt->python, "Python with torch for the reference")
      ->capture_default_str();
  step->add_option("--reference-script", opt->reference_script,
                   "Default: the source tree's step_reference.py");
  step->add_option("--device", opt->device, "cpu or cuda (cuda:N); the reference runs there too")
      ->capture_default_str();
  step->add_flag("--bf16", opt->bf16, "bf16 autocast around the forward, as training's (CUDA only)");
  step->add_option("--peak-tflops", opt->peak_tflops,
                   "Device peak for MFU in TFLOP/s (default: H100 SXM bf16 dense)")
      ->capture_default_str();
  step->add_flag("--json", *json_only, "Print only the JSON line");
  step->callback([opt, json_only, no_reference] {
    opt->reference = !*no_reference;
    const nlohmann::json result = bench::run_step_bench(*opt);
    if (!*json_only) {
      std::cout << "drop   tokens  step_s    encoder_s  encoder_vs_first  tokens/s    mfu        ";
      if (opt->reference) std::cout << "  ref_step_s  step_vs_ref";
      std::cout << "\n";
      for (auto it = result["median_step_s"].begin(); it != result["median_step_s"].end(); ++it) {
        const std::string& k = it.key();
        std::cout << std::left << std::setw(7) << k << std::setw(8)
                  << result["tokens"][k].get<int64_t>() << std::setw(10) << std::setprecision(4)
                  << it.value().get<double>() << std::setw(11)
                  << result["encoder_median_s"][k].get<double>() << std::setw(18)
                  << result["encoder_ratio_vs_first_drop"][k].get<double>() << std::setw(12)
                  << result["video_tokens_per_s"][k].get<double>() << std::setw(11)
                  << result["mfu"][k].get<double>();
        if (opt->reference)
          std::cout << std::setw(12) << result["reference_median_step_s"][k].get<double>()
                    << result["step_ratio_vs_reference"][k].get<double>();
        std::cout << "\n";
      }
    }
    std::cout << result.dump() << std::endl;
  });
}

}  // namespace harvest::cli
