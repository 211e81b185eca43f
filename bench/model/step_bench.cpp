#include "bench/model/step_bench.hpp"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <map>
#include <memory>
#include <thread>

#include "core/error.hpp"
#include "core/time.hpp"
#include "model/video_text_model.hpp"

namespace harvest::bench {
namespace {

std::string key(double drop) {
  std::array<char, 32> buf{};
  std::snprintf(buf.data(), buf.size(), "%g", drop);
  return buf.data();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

nlohmann::json reference_config(const ModelOptions& o) {
  return {{"vision_width", o.vision.width},   {"vision_layers", o.vision.layers},
          {"vision_heads", o.vision.heads},   {"patch_size", o.vision.patch_size},
          {"image_size", o.vision.image_size}, {"frames", o.vision.frames},
          {"text_width", o.text.width},       {"text_layers", o.text.layers},
          {"text_heads", o.text.heads},       {"context_length", o.text.context_length},
          {"vocab_size", o.vocab.size},       {"sot_id", o.vocab.sot_id},
          {"eot_id", o.vocab.eot_id},         {"embed_dim", o.embed_dim},
          {"fusion_layers", o.fusion_layers}, {"temperature_init", o.temperature_init}};
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (const char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

nlohmann::json run_reference(const StepBenchOptions& opt, const ModelOptions& model, int threads) {
  const std::string script =
      opt.reference_script.empty() ? std::string(HARVEST_SOURCE_DIR) + "/bench/reference/step_reference.py"
                                   : opt.reference_script;
  std::string drops;
  for (const double d : opt.drops) drops += (drops.empty() ? "" : ",") + key(d);
  const std::string command =
      shell_quote(opt.python) + " " + shell_quote(script) + " --config " + shell_quote(reference_config(model).dump()) +
      " --batch " + std::to_string(opt.batch) + " --drops " + drops + " --repeats " + std::to_string(opt.repeats) +
      " --warmup " + std::to_string(opt.warmup) + " --threads " + std::to_string(threads) +
      (opt.freeze_text ? " --freeze-text" : "") + " 2>&1";
  spdlog::info("bench step: running the PyTorch eager reference ({})", script);
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(command.c_str(), "r"), ::pclose);
  HARVEST_REQUIRE(pipe, Runtime, "bench step: cannot start ", opt.python, " ", script);
  std::string output;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe.get())) > 0) output.append(buf.data(), n);
  const int status = ::pclose(pipe.release());
  HARVEST_REQUIRE(status == 0, Runtime, "bench step: the reference (", script, ") failed with status ", status,
                  "; output:\n", output, "\n(--no-reference skips it)");
  const size_t end = output.find_last_not_of("\n");
  const size_t begin = output.rfind('\n', end);
  const std::string last = output.substr(begin == std::string::npos ? 0 : begin + 1, end - (begin == std::string::npos ? 0 : begin + 1) + 1);
  try {
    return nlohmann::json::parse(last);
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorKind::Runtime, "bench step: the reference's last line is not JSON (", e.what(), "): ", last);
  }
}

at::Tensor random_captions(int64_t batch, const ModelOptions& o) {
  const int64_t length = o.text.context_length, words = length - 2;
  at::Tensor ids = torch::zeros({batch, length}, torch::kLong);
  ids.select(1, 0).fill_(o.vocab.sot_id);
  ids.narrow(1, 1, words).copy_(torch::randint(0, o.vocab.sot_id, {batch, words}, torch::kLong));
  ids.select(1, 1 + words).fill_(o.vocab.eot_id);
  return ids;
}

}  // namespace

nlohmann::json run_step_bench(const StepBenchOptions& opt) {
  HARVEST_REQUIRE(!opt.drops.empty(), Usage, "bench step: --drop needs at least one ratio");
  for (const double d : opt.drops)
    HARVEST_REQUIRE(d >= 0 && d < 1, Usage, "bench step: --drop ratios must be in [0, 1), got ", d);
  HARVEST_REQUIRE(opt.batch >= 1 && opt.repeats >= 1 && opt.warmup >= 0, Usage,
                  "bench step: --batch and --repeats must be >= 1, --warmup >= 0");
  const int threads = opt.threads > 0 ? opt.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(threads);

  ModelOptions o = preset_options(opt.preset);
  o.vision.image_size = opt.size;
  o.vision.frames = opt.frames;
  o.freeze_text = opt.freeze_text;
  o.seed = 0;
  validate(o);
  VideoTextModel model(o);
  model->train();
  auto single = make_single_worker_collective();

  const ParamGroups groups = model->param_groups();
  std::vector<torch::optim::OptimizerParamGroup> param_groups;
  const auto adamw = [](double decay) {
    return std::make_unique<torch::optim::AdamWOptions>(
        torch::optim::AdamWOptions(1e-5).betas({0.9, 0.98}).eps(1e-6).weight_decay(decay));
  };
  param_groups.emplace_back(groups.decay, adamw(0.2));
  param_groups.emplace_back(groups.no_decay, adamw(0.0));
  torch::optim::AdamW optimizer(param_groups, torch::optim::AdamWOptions(1e-5));

  torch::manual_seed(0);
  const at::Tensor video = torch::randint(0, 256, {opt.batch, opt.frames, opt.size, opt.size, 3}, torch::kByte);
  const at::Tensor text = random_captions(opt.batch, o);
  const int64_t patches = opt.frames * o.vision.patches_per_frame();
  std::map<double, PatchDropper> droppers;
  for (const double d : opt.drops) droppers.emplace(d, PatchDropper(d, 1));

  auto step = [&](double drop) {
    StepRandomness r;
    if (drop > 0) r.keep = droppers.at(drop).draw(opt.batch, patches, torch::kCPU);
    r.masked = model->masker()(text);
    const LossParts parts = model->forward_with(normalize_video(video), text, *single, LossWeights{}, r);
    parts.total.backward();
    optimizer.step();
    optimizer.zero_grad();
  };
  auto encoder = [&](double drop) {
    const at::Tensor keep = drop > 0 ? droppers.at(drop).draw(opt.batch, patches, torch::kCPU) : at::Tensor();
    model->visual->forward(normalize_video(video), keep).embedding.sum().backward();
    model->zero_grad();
  };

  spdlog::info("bench step: preset {} at {} px, {} frames, batch {}, text {}, {} threads, drops {}", opt.preset,
               opt.size, opt.frames, opt.batch, opt.freeze_text ? "frozen" : "trainable", threads,
               nlohmann::json(opt.drops).dump());
  std::map<double, std::vector<double>> step_s, encoder_s;
  for (int rep = 0; rep < opt.warmup + opt.repeats; ++rep) {
    for (const double d : opt.drops) {
      Stopwatch watch;
      step(d);
      if (rep >= opt.warmup) step_s[d].push_back(watch.seconds());
    }
    for (const double d : opt.drops) {
      Stopwatch watch;
      encoder(d);
      if (rep >= opt.warmup) encoder_s[d].push_back(watch.seconds());
    }
    spdlog::info("bench step: round {}/{} done", rep + 1, opt.warmup + opt.repeats);
  }

  nlohmann::json out;
  const std::string base = key(opt.drops.front());
  for (const double d : opt.drops) {
    out["median_step_s"][key(d)] = median(step_s[d]);
    out["encoder_median_s"][key(d)] = median(encoder_s[d]);
    out["tokens"][key(d)] = 1 + (d > 0 ? kept_patch_count(patches, d) : patches);
  }
  for (const double d : opt.drops)
    out["encoder_ratio_vs_first_drop"][key(d)] =
        out["encoder_median_s"][key(d)].get<double>() / out["encoder_median_s"][base].get<double>();
  if (opt.reference) {
    const nlohmann::json ref = run_reference(opt, o, threads);
    out["reference_median_step_s"] = ref.at("median_step_s");
    out["reference_encoder_median_s"] = ref.at("encoder_median_s");
    out["reference_torch"] = ref.value("torch", "");
    for (const double d : opt.drops) {
      out["step_ratio_vs_reference"][key(d)] =
          out["median_step_s"][key(d)].get<double>() / ref.at("median_step_s").at(key(d)).get<double>();
      out["reference_encoder_ratio_vs_first_drop"][key(d)] =
          ref.at("encoder_median_s").at(key(d)).get<double>() / ref.at("encoder_median_s").at(base).get<double>();
    }
  }
  out["preset"] = opt.preset;
  out["size"] = opt.size;
  out["frames"] = opt.frames;
  out["batch"] = opt.batch;
  out["freeze_text"] = opt.freeze_text;
  out["threads"] = threads;
  out["repeats"] = opt.repeats;
  out["device"] = "cpu";
  return out;
}

}  // namespace harvest::bench
