#include "bench/model/step_bench.hpp"

#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <thread>

#include "core/cpus.hpp"
#include "core/error.hpp"
#include "core/time.hpp"
#include "model/video_text_model.hpp"
#include "worker/optimizer.hpp"

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
  return {{"vision_width", o.vision.width},    {"vision_layers", o.vision.layers},
          {"vision_heads", o.vision.heads},    {"patch_size", o.vision.patch_size},
          {"image_size", o.vision.image_size}, {"frames", o.vision.frames},
          {"text_width", o.text.width},        {"text_layers", o.text.layers},
          {"text_heads", o.text.heads},        {"context_length", o.text.context_length},
          {"vocab_size", o.vocab.size},        {"sot_id", o.vocab.sot_id},
          {"eot_id", o.vocab.eot_id},          {"embed_dim", o.embed_dim},
          {"fusion_layers", o.fusion_layers},  {"temperature_init", o.temperature_init}};
}

// The PyTorch eager reference as a child process in --serve mode: one timed call per request, so
// the C++ and PyTorch calls alternate under the same machine load.
class ReferenceProcess {
 public:
  ReferenceProcess(const StepBenchOptions& opt, const ModelOptions& model, int threads) {
    script_ = opt.reference_script.empty()
                  ? std::string(HARVEST_SOURCE_DIR) + "/bench/reference/step_reference.py"
                  : opt.reference_script;
    std::vector<std::string> args = {opt.python,  script_,
                                     "--config",  reference_config(model).dump(),
                                     "--batch",   std::to_string(opt.batch),
                                     "--threads", std::to_string(threads),
                                     "--serve"};
    if (opt.freeze_text) args.push_back("--freeze-text");
    int to_child[2], from_child[2];
    HARVEST_REQUIRE(::pipe(to_child) == 0 && ::pipe(from_child) == 0, Runtime,
                    "bench step: pipe failed");
    pid_ = ::fork();
    HARVEST_REQUIRE(pid_ >= 0, Runtime, "bench step: fork failed");
    if (pid_ == 0) {
      ::dup2(to_child[0], STDIN_FILENO);
      ::dup2(from_child[1], STDOUT_FILENO);
      for (int fd : {to_child[0], to_child[1], from_child[0], from_child[1]}) ::close(fd);
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execvp(argv[0], argv.data());
      std::fprintf(stderr, "bench step: cannot run %s: %s\n", argv[0], std::strerror(errno));
      ::_exit(127);
    }
    ::close(to_child[0]);
    ::close(from_child[1]);
    in_ = ::fdopen(to_child[1], "w");
    out_ = ::fdopen(from_child[0], "r");
    spdlog::info("bench step: starting the PyTorch eager reference ({})", script_);
    const std::string first = read_line();
    HARVEST_REQUIRE(first == "ready", Runtime, "bench step: the reference (", script_, ") said '",
                    first, "' instead of 'ready' (--no-reference skips it)");
  }
  ~ReferenceProcess() {
    if (in_) {
      std::fputs("quit\n", in_);
      std::fclose(in_);
    }
    if (out_) std::fclose(out_);
    if (pid_ > 0) ::waitpid(pid_, nullptr, 0);
  }
  ReferenceProcess(const ReferenceProcess&) = delete;
  ReferenceProcess& operator=(const ReferenceProcess&) = delete;

  // Seconds the reference took for one `what` ("step" or "encoder") call at `drop`.
  double time(const char* what, double drop) {
    std::fprintf(in_, "%s %s\n", what, key(drop).c_str());
    std::fflush(in_);
    const std::string line = read_line();
    try {
      return std::stod(line);
    } catch (const std::exception&) {
      fail(ErrorKind::Runtime, "bench step: the reference (", script_, ") answered '", line,
           "' to ", what, " ", drop);
    }
  }

 private:
  std::string read_line() {
    std::array<char, 256> buf{};
    if (!std::fgets(buf.data(), static_cast<int>(buf.size()), out_)) {
      int status = 0;
      ::waitpid(pid_, &status, 0);
      pid_ = -1;
      fail(ErrorKind::Runtime, "bench step: the reference (", script_, ") exited (status ", status,
           ") before answering; its error is above (--no-reference skips it)");
    }
    std::string line(buf.data());
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    return line;
  }

  std::string script_;
  pid_t pid_ = -1;
  FILE* in_ = nullptr;
  FILE* out_ = nullptr;
};

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
  const int threads = opt.threads > 0
                          ? opt.threads
                          : usable_cpus();
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

  // The training loop's optimizer (worker/optimizer.cpp), or LibTorch's AdamW with the same groups.
  const ParamGroups groups = model->param_groups();
  TrainConfig train;
  train.lr = 1e-5;
  train.beta1 = 0.9;
  train.beta2 = 0.98;
  train.eps = 1e-6;
  train.weight_decay = 0.2;
  std::unique_ptr<torch::optim::AdamW> optimizer_owner =
      make_adamw(groups.decay, groups.no_decay, train).adamw;
  if (opt.libtorch_adamw) {
    std::vector<torch::optim::OptimizerParamGroup> param_groups;
    for (const auto& group : optimizer_owner->param_groups())
      param_groups.emplace_back(group.params(), group.options().clone());
    optimizer_owner =
        std::make_unique<torch::optim::AdamW>(param_groups, torch::optim::AdamWOptions(train.lr));
  }
  torch::optim::AdamW& optimizer = *optimizer_owner;

  torch::manual_seed(0);
  const at::Tensor video =
      torch::randint(0, 256, {opt.batch, opt.frames, opt.size, opt.size, 3}, torch::kByte);
  const at::Tensor text = random_captions(opt.batch, o);
  const int64_t patches = opt.frames * o.vision.patches_per_frame();
  std::map<double, PatchDropper> droppers;
  for (const double d : opt.drops) droppers.emplace(d, PatchDropper(d, 1));

  double last_update_s = 0;  // the optimizer's share of the last step
  auto step = [&](double drop) {
    StepRandomness r;
    if (drop > 0) r.keep = droppers.at(drop).draw(opt.batch, patches, torch::kCPU);
    r.masked = model->masker()(text);
    const LossParts parts =
        model->forward_with(normalize_video(video), text, *single, LossWeights{}, r);
    parts.total.backward();
    Stopwatch update;
    optimizer.step();
    optimizer.zero_grad();
    last_update_s = update.seconds();
  };
  auto encoder = [&](double drop) {
    const at::Tensor keep =
        drop > 0 ? droppers.at(drop).draw(opt.batch, patches, torch::kCPU) : at::Tensor();
    model->visual->forward(normalize_video(video), keep).embedding.sum().backward();
    model->zero_grad();
  };

  spdlog::info(
      "bench step: preset {} at {} px, {} frames, batch {}, text {}, {}, {} threads, drops {}",
      opt.preset, opt.size, opt.frames, opt.batch, opt.freeze_text ? "frozen" : "trainable",
      opt.libtorch_adamw ? "LibTorch AdamW" : "fused AdamW", threads,
      nlohmann::json(opt.drops).dump());
  std::unique_ptr<ReferenceProcess> reference;
  if (opt.reference) reference = std::make_unique<ReferenceProcess>(opt, o, threads);
  // A B A B: each C++ call is followed by the same call in PyTorch, so both see the same load.
  std::map<double, std::vector<double>> step_s, encoder_s, ref_step_s, ref_encoder_s;
  std::vector<double> update_s;
  for (int rep = 0; rep < opt.warmup + opt.repeats; ++rep) {
    const bool timed = rep >= opt.warmup;
    for (const double d : opt.drops) {
      Stopwatch watch;
      step(d);
      if (timed) {
        step_s[d].push_back(watch.seconds());
        update_s.push_back(last_update_s);
      }
      if (reference) {
        const double t = reference->time("step", d);
        if (timed) ref_step_s[d].push_back(t);
      }
    }
    for (const double d : opt.drops) {
      Stopwatch watch;
      encoder(d);
      if (timed) encoder_s[d].push_back(watch.seconds());
      if (reference) {
        const double t = reference->time("encoder", d);
        if (timed) ref_encoder_s[d].push_back(t);
      }
    }
    spdlog::info("bench step: round {}/{} done", rep + 1, opt.warmup + opt.repeats);
  }
  reference.reset();

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
    for (const double d : opt.drops) {
      const double ref_step = median(ref_step_s[d]), ref_encoder = median(ref_encoder_s[d]);
      out["reference_median_step_s"][key(d)] = ref_step;
      out["reference_encoder_median_s"][key(d)] = ref_encoder;
      out["step_ratio_vs_reference"][key(d)] =
          out["median_step_s"][key(d)].get<double>() / ref_step;
      out["encoder_ratio_vs_reference"][key(d)] =
          out["encoder_median_s"][key(d)].get<double>() / ref_encoder;
      out["reference_encoder_ratio_vs_first_drop"][key(d)] =
          ref_encoder / median(ref_encoder_s[opt.drops.front()]);
    }
    out["reference_interleaved"] = true;
  }
  out["preset"] = opt.preset;
  out["size"] = opt.size;
  out["frames"] = opt.frames;
  out["batch"] = opt.batch;
  out["freeze_text"] = opt.freeze_text;
  out["optimizer"] = opt.libtorch_adamw ? "libtorch-adamw" : "fused-adamw";
  out["optimizer_median_s"] = median(update_s);  // AdamW step + zero_grad, any drop ratio
  out["threads"] = threads;
  out["repeats"] = opt.repeats;
  out["device"] = "cpu";
  return out;
}

}  // namespace harvest::bench
