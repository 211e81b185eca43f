#include "worker/checkpoint_state.hpp"

#include <spdlog/spdlog.h>
#include <torch/cuda.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "core/json.hpp"
#include "core/error.hpp"

namespace harvest {

namespace ck = harvest::checkpoint;

namespace {

// The side of a square grid of `cells` cells; 0 when `cells` is not a positive square.
int64_t square_side(int64_t cells) {
  if (cells <= 0) return 0;
  auto side = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(cells))));
  return side * side == cells ? side : 0;
}

// [T_file, W] -> [frames, W], linear in time with align_corners=false: the same resampling the
// video encoder applies when it sees another frame count (VideoEncoderImpl::temporal_embedding_for).
at::Tensor resize_temporal_embedding(const at::Tensor& table, int64_t frames) {
  return at::upsample_linear1d(table.t().unsqueeze(0), {frames}, /*align_corners=*/false)
      .squeeze(0)
      .t();
}

// CLIP's [1 + g*g, W] position table (CLS row, then the patch grid row-major) -> [rows, W] for
// another image size: the CLS row is kept, the grid resampled bicubically (align_corners=false),
// as CLIP and timm code bases do for a new resolution.
at::Tensor resize_position_embedding(const at::Tensor& table, int64_t rows) {
  const int64_t from = square_side(table.size(0) - 1), to = square_side(rows - 1);
  HARVEST_REQUIRE(from > 0 && to > 0, Runtime, "position embedding of ", table.size(0),
                  " rows cannot be resized to ", rows, " rows: both need 1 + a square grid");
  const int64_t width = table.size(1);
  const at::Tensor grid = table.narrow(0, 1, from * from)
                              .to(at::kFloat)
                              .t()
                              .reshape({1, width, from, from});  // [1, W, y, x]
  const at::Tensor resized =
      at::upsample_bicubic2d(grid, {to, to}, /*align_corners=*/false).reshape({width, to * to}).t();
  return at::cat({table.narrow(0, 0, 1).to(at::kFloat), resized}, 0).to(table.dtype());
}

ck::DType to_dtype(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return ck::DType::F32;
    case at::kDouble:
      return ck::DType::F64;
    case at::kHalf:
      return ck::DType::F16;
    case at::kBFloat16:
      return ck::DType::BF16;
    case at::kLong:
      return ck::DType::I64;
    case at::kInt:
      return ck::DType::I32;
    case at::kShort:
      return ck::DType::I16;
    case at::kChar:
      return ck::DType::I8;
    case at::kByte:
      return ck::DType::U8;
    case at::kBool:
      return ck::DType::Bool;
    default:
      fail(ErrorKind::Internal, "checkpoint: no dtype for ", t);
  }
}

at::ScalarType to_scalar(ck::DType t) {
  switch (t) {
    case ck::DType::F32:
      return at::kFloat;
    case ck::DType::F64:
      return at::kDouble;
    case ck::DType::F16:
      return at::kHalf;
    case ck::DType::BF16:
      return at::kBFloat16;
    case ck::DType::I64:
      return at::kLong;
    case ck::DType::I32:
      return at::kInt;
    case ck::DType::I16:
      return at::kShort;
    case ck::DType::I8:
      return at::kChar;
    case ck::DType::U8:
      return at::kByte;
    case ck::DType::Bool:
      return at::kBool;
  }
  fail(ErrorKind::Internal, "checkpoint: unknown dtype");
}

// A CPU tensor that is contiguous is queued for the snapshot's one parallel copy pass (it must
// not change before CheckpointSaver::save() returns, which the caller guarantees: it saves before
// the next step). Anything else (a device tensor, a strided view) is copied now, by LibTorch,
// straight into the snapshot's buffer: one copy, no intermediate tensor.
void add_tensor(ck::Snapshot& snap, const std::string& path, const at::Tensor& tensor) {
  const at::Tensor t = tensor.detach();
  const ck::DType dtype = to_dtype(t.scalar_type());
  if (t.device().is_cpu() && t.is_contiguous()) {
    snap.add_deferred(path, dtype, t.sizes().vec(), t.data_ptr());
    return;
  }
  std::byte* dst = snap.add(path, dtype, t.sizes().vec());
  at::from_blob(dst, t.sizes(), at::TensorOptions().dtype(t.scalar_type())).copy_(t);
}

void add_blob(ck::Snapshot& snap, const std::string& path, const at::Tensor& bytes) {
  const at::Tensor host = bytes.contiguous();
  snap.add_blob(path, std::string_view(static_cast<const char*>(host.data_ptr()), host.numel()));
}

at::Tensor blob_tensor(const std::string& bytes) {
  at::Tensor t = at::empty({static_cast<int64_t>(bytes.size())}, at::kByte);
  std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
  return t;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Reads `path` into a new CPU tensor of its stored dtype and shape.
at::Tensor read_tensor(const ck::CheckpointReader& reader, const std::string& path) {
  const ck::RecordInfo* info = reader.find(path);
  HARVEST_REQUIRE(info, Runtime, "checkpoint record ", path, " is missing");
  at::Tensor t = at::empty(info->shape, at::TensorOptions().dtype(to_scalar(info->dtype)));
  reader.read_into(path, t.data_ptr(), static_cast<size_t>(t.numel() * t.element_size()));
  return t;
}

// Every model tensor by record path (parameters and buffers).
std::vector<std::pair<std::string, at::Tensor>> model_tensors(VideoTextModelImpl& model) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& p : model.named_parameters())
    out.emplace_back(model_record_path(p.key()), p.value());
  for (const auto& b : model.named_buffers())
    out.emplace_back(model_record_path(b.key()), b.value());
  return out;
}

// The key torch::optim's state() files a parameter under.
void* state_key(const at::Tensor& param) { return param.unsafeGetTensorImpl(); }

// Collects every mismatch between the model and a checkpoint, then throws them together.
void check_model_records(const ck::CheckpointReader& reader, VideoTextModelImpl& model,
                         const std::string& file, bool allow_resize) {
  std::vector<std::string> problems;
  std::set<std::string> expected;
  for (const auto& [path, tensor] : model_tensors(model)) {
    expected.insert(path);
    const ck::RecordInfo* info = reader.find(path);
    if (!info) {
      problems.push_back("missing " + path);
      continue;
    }
    const bool resizable = allow_resize && (path == "model/visual/temporal_embedding" ||
                                            (path == "model/visual/positional_embedding" &&
                                             info->shape.size() == 2 &&
                                             square_side(info->shape[0] - 1) > 0));
    const bool shape_ok =
        info->shape == tensor.sizes().vec() ||
        (resizable && info->shape.size() == 2 && info->shape[1] == tensor.size(1));
    if (!shape_ok)
      problems.push_back(path + ": shape " + shape_text(info->shape) + " in the file, " +
                         shape_text(tensor.sizes().vec()) + " in the model");
  }
  for (const auto& info : reader.records())
    if (info.path.rfind("model/", 0) == 0 && !expected.count(info.path))
      problems.push_back("unexpected " + info.path);
  if (problems.empty()) return;
  std::string msg =
      cat(file, ": checkpoint does not fit the model (", problems.size(), " problems):");
  for (const auto& p : problems) msg += "\n  " + p;
  throw Error(ErrorKind::Runtime, msg);
}

}  // namespace

std::string model_record_path(const std::string& name) {
  std::string path = "model/" + name;
  std::replace(path.begin(), path.end(), '.', '/');
  return path;
}

ck::Snapshot capture_training_state(VideoTextModelImpl& model, torch::optim::AdamW& optimizer,
                                    const TrainProgress& progress, const std::string& sampler_state,
                                    ck::Snapshot snap) {
  snap.meta.step = progress.step;
  snap.meta.epoch = progress.epoch;
  for (const auto& [path, tensor] : model_tensors(model)) add_tensor(snap, path, tensor);

  auto& states = optimizer.state();
  for (const auto& p : model.named_parameters()) {
    auto it = states.find(state_key(p.value()));
    if (it == states.end()) continue;  // frozen, or no step taken yet
    const auto& s = static_cast<const torch::optim::AdamWParamState&>(*it->second);
    const std::string base = "optimizer/" + model_record_path(p.key()).substr(6);
    add_tensor(snap, base + "/exp_avg", s.exp_avg());
    add_tensor(snap, base + "/exp_avg_sq", s.exp_avg_sq());
    const int64_t step = s.step();
    snap.add_copy(base + "/step", ck::DType::I64, {}, &step);
  }

  add_blob(snap, "rng/torch_cpu", at::detail::getDefaultCPUGenerator().get_state());
  // Each visible device's default generator (dropout and other random kernels on the GPU).
  for (int64_t d = 0; d < static_cast<int64_t>(torch::cuda::device_count()); ++d)
    add_blob(snap, "rng/cuda/" + std::to_string(d),
             at::globalContext().defaultGenerator(at::Device(at::kCUDA, d)).get_state());
  add_blob(snap, "rng/patch_dropper", model.dropper().state());
  add_blob(snap, "rng/text_masker", model.masker().state());
  snap.add_blob("data/sampler", sampler_state);
  const nlohmann::json p = {{"step", progress.step},
                            {"epoch", progress.epoch},
                            {"skipped_steps", progress.skipped_steps},
                            {"clips_seen", progress.clips_seen}};
  snap.add_blob("train/progress", p.dump());
  snap.copy_pending();  // a caller that does not save at once still gets a self-contained snapshot
  return snap;
}

std::pair<TrainProgress, std::string> restore_training_state(const std::filesystem::path& path,
                                                             VideoTextModelImpl& model,
                                                             torch::optim::AdamW& optimizer) {
  const ck::CheckpointReader reader(path);
  const std::string file = path.string();
  check_model_records(reader, model, file, /*allow_resize=*/false);
  for (const char* blob :
       {"rng/torch_cpu", "rng/patch_dropper", "rng/text_masker", "data/sampler", "train/progress"})
    HARVEST_REQUIRE(reader.find(blob), Runtime, file, ": not a training checkpoint (no ", blob,
                    "); use model.init to start from weights only");

  at::NoGradGuard no_grad;
  for (auto& [path, tensor] : model_tensors(model)) tensor.copy_(read_tensor(reader, path));

  auto& states = optimizer.state();
  for (const auto& p : model.named_parameters()) {
    const std::string base = "optimizer/" + model_record_path(p.key()).substr(6);
    if (!reader.find(base + "/exp_avg")) continue;
    const at::Tensor& param = p.value();
    HARVEST_REQUIRE(param.requires_grad(), Runtime, file, ": optimizer state for ", p.key(),
                    " which is frozen in this run (model.freeze_text changed?)");
    // Moments of another shape would crash the first optimizer step (FusedAdamW walks raw
    // pointers over the parameter's extent): refuse them here, naming the record.
    at::Tensor exp_avg = read_tensor(reader, base + "/exp_avg");
    at::Tensor exp_avg_sq = read_tensor(reader, base + "/exp_avg_sq");
    const at::Tensor step = read_tensor(reader, base + "/step");
    for (const auto& [name, moment] : {std::pair<const char*, const at::Tensor&>{"/exp_avg", exp_avg},
                                       {"/exp_avg_sq", exp_avg_sq}})
      HARVEST_REQUIRE(moment.sizes() == param.sizes() && moment.scalar_type() == param.scalar_type(), Runtime, file,
                      ": ", base, name, " is ", moment.sizes(), " ", moment.scalar_type(), " but parameter ", p.key(),
                      " is ", param.sizes(), " ", param.scalar_type(), " (a damaged or foreign checkpoint)");
    HARVEST_REQUIRE(step.numel() == 1, Runtime, file, ": ", base, "/step holds ", step.numel(),
                    " values, expected one");
    auto state = std::make_unique<torch::optim::AdamWParamState>();
    state->exp_avg(exp_avg.to(param.device()));
    state->exp_avg_sq(exp_avg_sq.to(param.device()));
    state->step(step.item<int64_t>());
    states[state_key(param)] = std::move(state);
  }

  auto blob = [&](const std::string& path) {
    const ck::HostBuffer b = reader.read(path);
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
  };
  at::Generator cpu = at::detail::getDefaultCPUGenerator();  // a handle to the global generator
  cpu.set_state(blob_tensor(blob("rng/torch_cpu")));
  model.dropper().set_state(blob_tensor(blob("rng/patch_dropper")));
  model.masker().set_state(blob_tensor(blob("rng/text_masker")));
  const int64_t devices = static_cast<int64_t>(torch::cuda::device_count());
  for (int64_t d = 0;; ++d) {
    const std::string name = "rng/cuda/" + std::to_string(d);
    if (!reader.find(name)) break;
    if (d >= devices) {
      spdlog::warn(
          "{}: holds the RNG state of CUDA device {} but this process sees {} device(s): "
          "not restored, so GPU randomness will differ from the saved run",
          file, d, devices);
      break;
    }
    at::Generator gen = at::globalContext().defaultGenerator(at::Device(at::kCUDA, d));
    gen.set_state(blob_tensor(blob(name)));
  }
  const auto p = parse_json_or_discarded(blob("train/progress"));
  const auto is_count = [&](const char* key) { return p.contains(key) && p[key].is_number_integer(); };
  HARVEST_REQUIRE(p.is_object() && is_count("step") && is_count("epoch") && is_count("skipped_steps") &&
                      is_count("clips_seen"),
                  Runtime, file, ": record train/progress is not {\"step\", \"epoch\", \"skipped_steps\", "
                  "\"clips_seen\"} integers (a damaged or foreign checkpoint)");
  TrainProgress progress{p.at("step"), p.at("epoch"), p.at("skipped_steps"), p.at("clips_seen")};
  return {progress, blob("data/sampler")};
}

namespace {

// The towers' MLP activations the weights were trained with: an imported model's architecture
// record says (records without the field are CLIP's quick_gelu), a training checkpoint's stored
// config says through model.activation. Shapes cannot tell gelu from quick_gelu, so a mismatch
// is refused here rather than trained on.
void check_activation(const ck::CheckpointReader& reader, const VideoTextModelImpl& model, const std::string& origin) {
  std::string vision = "quick_gelu", text = "quick_gelu";
  if (reader.find("architecture")) {
    const ck::HostBuffer b = reader.read("architecture");
    const auto j = parse_json_or_discarded(std::string(reinterpret_cast<const char*>(b.data()), b.size()));
    auto field = [&](const char* section) {
      if (!j.is_object() || !j.contains(section) || !j[section].is_object()) return std::string("quick_gelu");
      const auto& s = j[section];
      return s.contains("activation") && s["activation"].is_string() ? s["activation"].get<std::string>()
                                                                     : std::string("quick_gelu");
    };
    vision = field("vision");
    text = field("text");
  } else if (!reader.meta().config_toml.empty()) {
    vision = text = parse_config(reader.meta().config_toml, origin + " (stored config)").model.activation;
  }
  const ModelOptions& o = model.options();
  HARVEST_REQUIRE(vision == o.vision.activation && text == o.text.activation, Config, origin,
                  ": its weights use activation ", vision, " (vision) / ", text, " (text) but this model uses ",
                  o.vision.activation, " / ", o.text.activation, "; set model.activation to match");
}

}  // namespace

void load_model_weights(const std::filesystem::path& path, VideoTextModelImpl& model) {
  const ck::CheckpointReader reader(path);
  check_activation(reader, model, path.string());
  check_model_records(reader, model, path.string(), /*allow_resize=*/true);
  at::NoGradGuard no_grad;
  for (auto& [record, tensor] : model_tensors(model)) {
    at::Tensor stored = read_tensor(reader, record).to(tensor.dtype());
    if (stored.sizes() != tensor.sizes()) {
      const int64_t rows = stored.size(0);
      stored = record == "model/visual/positional_embedding"
                   ? resize_position_embedding(stored, tensor.size(0))
                   : resize_temporal_embedding(stored, tensor.size(0));
      spdlog::info("{}: {} resized from {} to {} rows to fit the model", path.string(), record,
                   rows, tensor.size(0));
    }
    tensor.copy_(stored);
  }
}

}  // namespace harvest
