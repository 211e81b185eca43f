#include "bench/model/step_bench.hpp"

#include <c10/cuda/CUDACachingAllocator.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <thread>

#include "core/cpus.hpp"
#include "core/error.hpp"
#include "core/time.hpp"
#include "model/cuda_autocast.hpp"
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
    args.insert(args.end(), {"--device", opt.device});
    if (opt.bf16) args.push_back("--bf16");
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

  struct Timing {
    double seconds = 0;
    int64_t peak_bytes = -1;  // the call's peak allocated device memory; -1 on the CPU
  };

  // One `what` ("step" or "encoder") call at `drop`; the reference answers "SECONDS PEAK_BYTES".
  Timing time(const char* what, double drop) {
    std::fprintf(in_, "%s %s\n", what, key(drop).c_str());
    std::fflush(in_);
    const std::string line = read_line();
    Timing t;
    char rest = 0;
    if (std::sscanf(line.c_str(), "%lf %" SCNd64 " %c", &t.seconds, &t.peak_bytes, &rest) != 2)
      fail(ErrorKind::Runtime, "bench step: the reference (", script_, ") answered '", line, "' to ", what,
           " ", drop, " (expected 'SECONDS PEAK_BYTES')");
    return t;
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

// "cpu", "cuda" or "cuda:N"; a CUDA device must be visible.
torch::Device bench_device(const std::string& name) {
  std::optional<torch::Device> device;
  try {
    device = torch::Device(name);
  } catch (const std::exception&) {
  }
  HARVEST_REQUIRE(device && (device->is_cpu() || device->is_cuda()), Usage,
                  "bench step: --device must be cpu or cuda (cuda:N), got '", name, "'");
  if (device->is_cpu()) return *device;
  HARVEST_REQUIRE(torch::cuda::is_available(), Runtime, "bench step: --device ", name,
                  " but LibTorch sees no CUDA device (torch::cuda::device_count() = ",
                  static_cast<int>(torch::cuda::device_count()), ")");
  const int index = device->has_index() ? device->index() : 0;
  HARVEST_REQUIRE(index < torch::cuda::device_count(), Usage, "bench step: --device ", name, ": only ",
                  static_cast<int>(torch::cuda::device_count()), " CUDA devices");
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

int64_t max_rss_bytes() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
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

// Model FLOPs of one training step: 2 per multiply-add of every matmul and convolution (the
// convention MFU is quoted in); norms, softmax, activations, the losses' element-wise work and
// the B x B contrastive logits (< 0.1%) are left out. With B clips of T frames, P patches per
// frame of side p, N = 1 + kept video tokens per clip, widths W_v (video) and W_t (text),
// embedding size E, caption length C, vocabulary V:
//   a transformer layer over n tokens of width w:  24 n w^2 (q, k, v, out: 4 w^2; MLP: 8 w^2)
//                                                 + 4 n^2 w (q k^T and P v over all n keys; the
//                                                   text tower's causal mask is additive, so its
//                                                   kernel computes every score too)
//   video tower: 2 (T P) 3 p^2 W_v patch embedding (every patch, before dropping)
//                + B x layers over N tokens + 2 B W_v E projection
//   text tower:  2B captions (unmasked for VTC and masked for MLM) x layers over C tokens
//                + 2 (2B) W_t E projection
//   fusion head, per layer and masked caption: 28 C W_t^2 (self-attention 8, cross-attention q and
//                out 4, MLP 16) + 4 N W_v W_t (cross-attention k, v over the video tokens)
//                + 4 C^2 W_t + 4 C N W_t (the two attentions' scores and sums)
//   MLM prediction: M = text_mask_ratio (C - 2) masked tokens per caption (the bench's captions
//                fill the context), each 2 W_t^2 (dense) + 2 W_t V (logits over the vocabulary)
//   forward + backward = 3 x forward for everything trained (the backward computes the gradients
//                of inputs and of weights, a forward's worth each), 2 x for the patch embedding
//                (pixels need no gradient) and 1 x for a frozen text tower.
double step_flops(const ModelOptions& o, int64_t batch, int64_t kept, bool freeze_text) {
  const auto layer = [](double n, double w, double layers) { return layers * (24 * n * w * w + 4 * n * n * w); };
  const double B = static_cast<double>(batch), N = 1.0 + static_cast<double>(kept);
  const double Wv = static_cast<double>(o.vision.width), Wt = static_cast<double>(o.text.width);
  const double E = static_cast<double>(o.embed_dim), C = static_cast<double>(o.text.context_length);
  const double V = static_cast<double>(o.vocab.size), p = static_cast<double>(o.vision.patch_size);
  const double patches = static_cast<double>(o.vision.frames * o.vision.patches_per_frame());

  const double patch_embedding = B * 2 * patches * 3 * p * p * Wv;
  const double video = B * layer(N, Wv, static_cast<double>(o.vision.layers)) + 2 * B * Wv * E;
  const double text = 2 * B * layer(C, Wt, static_cast<double>(o.text.layers)) + 2 * (2 * B) * Wt * E;
  const double fusion = B * static_cast<double>(o.fusion_layers) *
                        (28 * C * Wt * Wt + 4 * N * Wv * Wt + 4 * C * C * Wt + 4 * C * N * Wt);
  const double masked = B * o.text_mask_ratio * (C - 2);
  const double predict = masked * (2 * Wt * Wt + 2 * Wt * V);
  return 2 * patch_embedding + 3 * (video + fusion + predict) + (freeze_text ? 1 : 3) * text;
}

nlohmann::json run_step_bench(const StepBenchOptions& opt) {
  HARVEST_REQUIRE(!opt.drops.empty(), Usage, "bench step: --drop needs at least one ratio");
  for (const double d : opt.drops)
    HARVEST_REQUIRE(d >= 0 && d < 1, Usage, "bench step: --drop ratios must be in [0, 1), got ", d);
  HARVEST_REQUIRE(opt.batch >= 1 && opt.repeats >= 1 && opt.warmup >= 0, Usage,
                  "bench step: --batch and --repeats must be >= 1, --warmup >= 0");
  HARVEST_REQUIRE(opt.peak_tflops > 0, Usage, "bench step: --peak-tflops must be > 0, got ", opt.peak_tflops);
  const torch::Device device = bench_device(opt.device);
  HARVEST_REQUIRE(!opt.bf16 || device.is_cuda(), Usage,
                  "bench step: --bf16 needs --device cuda (bf16 autocast is CUDA-only, as in training)");
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
  model->to(device);
  model->train();
  model->set_bf16_autocast(opt.bf16);
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
      torch::randint(0, 256, {opt.batch, opt.frames, opt.size, opt.size, 3}, torch::kByte).to(device);
  const at::Tensor text = random_captions(opt.batch, o).to(device);
  const int64_t patches = opt.frames * o.vision.patches_per_frame();
  const auto kept_of = [&](double drop) { return drop > 0 ? kept_patch_count(patches, drop) : patches; };
  std::map<double, PatchDropper> droppers;
  for (const double d : opt.drops) droppers.emplace(d, PatchDropper(d, 1));

  // CUDA work is asynchronous: every timed region starts and ends with the device idle.
  const auto sync = [&] {
    if (device.is_cuda()) torch::cuda::synchronize(device.index());
  };
  const auto reset_peak_memory = [&] {
    if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.index());
  };
  const auto peak_memory = [&]() -> int64_t {
    if (!device.is_cuda()) return -1;
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    return stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak;
  };

  double last_update_s = 0;  // the optimizer's share of the last step
  auto step = [&](double drop) {
    StepRandomness r;
    if (drop > 0) r.keep = droppers.at(drop).draw(opt.batch, patches, device);
    r.masked = model->masker()(text);
    const LossParts parts =
        model->forward_with(normalize_video(video), text, *single, LossWeights{}, r);
    parts.total.backward();
    sync();
    Stopwatch update;
    optimizer.step();
    optimizer.zero_grad();
    sync();
    last_update_s = update.seconds();
  };
  // The video tower alone, under the same autocast the step's forward uses.
  auto encoder = [&](double drop) {
    const at::Tensor keep =
        drop > 0 ? droppers.at(drop).draw(opt.batch, patches, device) : at::Tensor();
    at::Tensor embedding;
    {
      const CudaAutocast autocast(opt.bf16 && device.is_cuda());
      embedding = model->visual->forward(normalize_video(video), keep).embedding;
    }
    embedding.sum().backward();
    model->zero_grad();
  };

  spdlog::info(
      "bench step: preset {} at {} px, {} frames, batch {}, text {}, {}, {} threads, drops {}, on {}{}",
      opt.preset, opt.size, opt.frames, opt.batch, opt.freeze_text ? "frozen" : "trainable",
      opt.libtorch_adamw ? "LibTorch AdamW" : "fused AdamW", threads,
      nlohmann::json(opt.drops).dump(), device.str(), opt.bf16 ? " (bf16 autocast)" : "");
  std::unique_ptr<ReferenceProcess> reference;
  if (opt.reference) reference = std::make_unique<ReferenceProcess>(opt, o, threads);
  // A B A B: each C++ call is followed by the same call in PyTorch, so both see the same load.
  std::map<double, std::vector<double>> step_s, encoder_s, ref_step_s, ref_encoder_s;
  std::map<double, int64_t> peak_bytes, ref_peak_bytes;  // the highest over the timed steps
  std::vector<double> update_s;
  for (int rep = 0; rep < opt.warmup + opt.repeats; ++rep) {
    const bool timed = rep >= opt.warmup;
    for (const double d : opt.drops) {
      sync();
      reset_peak_memory();
      Stopwatch watch;
      step(d);  // ends synchronised
      if (timed) {
        step_s[d].push_back(watch.seconds());
        update_s.push_back(last_update_s);
        peak_bytes[d] = std::max(peak_bytes.count(d) ? peak_bytes[d] : int64_t{-1}, peak_memory());
      }
      if (reference) {
        const ReferenceProcess::Timing t = reference->time("step", d);
        if (timed) {
          ref_step_s[d].push_back(t.seconds);
          ref_peak_bytes[d] = std::max(ref_peak_bytes.count(d) ? ref_peak_bytes[d] : int64_t{-1}, t.peak_bytes);
        }
      }
    }
    for (const double d : opt.drops) {
      sync();
      Stopwatch watch;
      encoder(d);
      sync();
      if (timed) encoder_s[d].push_back(watch.seconds());
      if (reference) {
        const ReferenceProcess::Timing t = reference->time("encoder", d);
        if (timed) ref_encoder_s[d].push_back(t.seconds);
      }
    }
    spdlog::info("bench step: round {}/{} done", rep + 1, opt.warmup + opt.repeats);
  }
  reference.reset();

  nlohmann::json out;
  const std::string base = key(opt.drops.front());
  // Throughput: video tokens (CLS + kept patches, what the video transformer processes) per
  // second over the whole step; MFU: the step's model FLOPs (step_flops) per second / the peak.
  const auto per_step = [&](double drop, double seconds, const std::string& prefix) {
    const int64_t kept = kept_of(drop);
    out[prefix + "video_tokens_per_s"][key(drop)] = static_cast<double>(opt.batch * (1 + kept)) / seconds;
    const double flops_per_s = step_flops(o, opt.batch, kept, opt.freeze_text) / seconds;
    out[prefix + "tflops_per_s"][key(drop)] = flops_per_s / 1e12;
    out[prefix + "mfu"][key(drop)] = flops_per_s / (opt.peak_tflops * 1e12);
  };
  for (const double d : opt.drops) {
    out["median_step_s"][key(d)] = median(step_s[d]);
    out["encoder_median_s"][key(d)] = median(encoder_s[d]);
    out["tokens"][key(d)] = 1 + kept_of(d);
    out["flops_per_step"][key(d)] = step_flops(o, opt.batch, kept_of(d), opt.freeze_text);
    per_step(d, median(step_s[d]), "");
    if (device.is_cuda()) out["peak_memory_bytes"][key(d)] = peak_bytes[d];
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
      per_step(d, ref_step, "reference_");
      if (device.is_cuda()) out["reference_peak_memory_bytes"][key(d)] = ref_peak_bytes[d];
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
  out["warmup"] = opt.warmup;
  out["device"] = device.str();
  out["bf16"] = opt.bf16;
  out["peak_tflops"] = opt.peak_tflops;
  if (device.is_cuda()) {
    out["peak_memory_note"] =
        "peak allocated bytes of the CUDA caching allocator during one step (the highest over the timed steps)";
  } else {
    // The CPU allocator keeps no statistics; the process's high-water mark is all there is.
    out["max_rss_bytes"] = max_rss_bytes();
    out["peak_memory_note"] = "cpu: no per-step allocator statistics; max_rss_bytes is the whole process's high-water mark";
  }
  return out;
}

}  // namespace harvest::bench
