#include "eval/model_file.hpp"

#include <cstring>
#include <nlohmann/json.hpp>

#include "checkpoint/commit.hpp"
#include "checkpoint/reader.hpp"
#include "checkpoint/writer.hpp"
#include "core/json.hpp"
#include "core/error.hpp"
#include "worker/checkpoint_state.hpp"

namespace harvest::eval {

namespace ck = harvest::checkpoint;

std::string architecture_json(const ModelOptions& o, const std::string& vocab_file) {
  const nlohmann::json j = {
      {"preset", o.preset},
      {"embed_dim", o.embed_dim},
      {"vision",
       {{"width", o.vision.width},
        {"layers", o.vision.layers},
        {"heads", o.vision.heads},
        {"patch_size", o.vision.patch_size},
        {"image_size", o.vision.image_size},
        {"frames", o.vision.frames},
        {"activation", o.vision.activation}}},
      {"text",
       {{"width", o.text.width},
        {"layers", o.text.layers},
        {"heads", o.text.heads},
        {"context_length", o.text.context_length},
        {"max_positions", o.text.max_positions},
        {"activation", o.text.activation}}},
      {"vocab",
       {{"size", o.vocab.size},
        {"sot_id", o.vocab.sot_id},
        {"eot_id", o.vocab.eot_id},
        {"file", vocab_file}}},
      {"fusion_layers", o.fusion_layers},
  };
  return j.dump(2);
}

ModelOptions parse_architecture(const std::string& text, const std::string& origin,
                                std::string* vocab_file) {
  const nlohmann::json j = parse_json_or_discarded(text);
  HARVEST_REQUIRE(j.is_object(), Config, origin, ": architecture record is not a JSON object");
  auto get = [&](const nlohmann::json& scope, const char* section, const char* key) -> int64_t {
    const nlohmann::json* s =
        section[0] ? (scope.contains(section) ? &scope[section] : nullptr) : &scope;
    HARVEST_REQUIRE(s && s->is_object() && s->contains(key) && (*s)[key].is_number_integer(),
                    Config, origin, ": architecture record lacks integer ",
                    section[0] ? std::string(section) + "." : "", key);
    return (*s)[key].get<int64_t>();
  };
  ModelOptions o;
  o.preset = j.value("preset", std::string());
  o.embed_dim = get(j, "", "embed_dim");
  o.vision.width = get(j, "vision", "width");
  o.vision.layers = get(j, "vision", "layers");
  o.vision.heads = get(j, "vision", "heads");
  o.vision.patch_size = get(j, "vision", "patch_size");
  o.vision.image_size = get(j, "vision", "image_size");
  o.vision.frames = get(j, "vision", "frames");
  o.text.width = get(j, "text", "width");
  o.text.layers = get(j, "text", "layers");
  o.text.heads = get(j, "text", "heads");
  o.text.context_length = get(j, "text", "context_length");
  o.text.max_positions = get(j, "text", "max_positions");
  o.vocab.size = get(j, "vocab", "size");
  o.vocab.sot_id = get(j, "vocab", "sot_id");
  o.vocab.eot_id = get(j, "vocab", "eot_id");
  o.fusion_layers = get(j, "", "fusion_layers");
  // Records written before the activation was recorded are CLIP's quick_gelu.
  auto activation = [&](const char* section) {
    const nlohmann::json& s = j[section];
    if (!s.contains("activation")) return std::string("quick_gelu");
    HARVEST_REQUIRE(s["activation"].is_string() && is_known_activation(s["activation"].get<std::string>()),
                    Config, origin, ": architecture record: ", section, ".activation must be \"quick_gelu\" or \"gelu\"");
    return s["activation"].get<std::string>();
  };
  o.vision.activation = activation("vision");
  o.text.activation = activation("text");
  if (vocab_file) *vocab_file = j["vocab"].value("file", std::string());
  try {
    validate(o);
  } catch (const Error& e) {
    fail(ErrorKind::Config, origin, ": architecture record: ", e.what());
  }
  return o;
}

void write_model_file(VideoTextModelImpl& model, const std::string& vocab_file,
                      const std::string& config_toml, const std::filesystem::path& out) {
  ck::Snapshot snap;
  snap.meta.config_toml = config_toml;
  snap.meta.torch_version = TORCH_VERSION;
  auto add = [&](const std::string& name, const at::Tensor& tensor) {
    const at::Tensor host = tensor.detach().to(at::kCPU, at::kFloat).contiguous();
    std::byte* dst = snap.add(model_record_path(name), ck::DType::F32, host.sizes().vec());
    std::memcpy(dst, host.data_ptr(), static_cast<size_t>(host.numel()) * sizeof(float));
  };
  for (const auto& p : model.named_parameters()) add(p.key(), p.value());
  for (const auto& b : model.named_buffers()) add(b.key(), b.value());
  snap.add_blob("architecture", architecture_json(model.options(), vocab_file));
  ck::write_checkpoint_file(snap, out);
}

std::filesystem::path resolve_model_path(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  HARVEST_REQUIRE(fs::exists(path, ec), Usage, path.string(),
                  ": no such checkpoint file or directory");
  if (!fs::is_directory(path, ec)) return path;
  // A run folder (logging.run_dir) with its checkpoints in the default place.
  if (!fs::exists(path / "latest", ec) && fs::exists(path / "checkpoints" / "latest", ec))
    return resolve_model_path(path / "checkpoints");
  if (fs::exists(path / "latest", ec)) {
    const auto resolved = ck::resolve_latest(path, ck::VerifyLevel::Sizes);
    HARVEST_REQUIRE(resolved && !resolved->parts.empty(), Usage, path.string(),
                    ": no committed checkpoint verifies in this directory");
    return resolved->parts.front();
  }
  for (const auto& entry : fs::directory_iterator(path, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("part-00000-of-", 0) == 0 && entry.path().extension() == ".h5")
      return entry.path();
  }
  fail(ErrorKind::Usage, path.string(),
       ": a directory that is neither a run folder (with checkpoints/latest), a checkpoint "
       "directory (with 'latest') nor a checkpoint folder (with part-00000-of-N.h5)");
}

LoadedModel load_model_file(const std::filesystem::path& path,
                            const std::optional<std::string>& vocab_override) {
  const std::filesystem::path file = resolve_model_path(path);
  const std::string origin = file.string();
  LoadedModel loaded;
  loaded.file = file;
  std::optional<ModelConfig> model_config;
  {
    const ck::CheckpointReader reader(file);
    loaded.step = reader.meta().step;
    if (reader.find("architecture")) {
      const ck::HostBuffer b = reader.read("architecture");
      loaded.options =
          parse_architecture(std::string(reinterpret_cast<const char*>(b.data()), b.size()), origin,
                             &loaded.vocab_file);
    } else {
      HARVEST_REQUIRE(!reader.meta().config_toml.empty(), Config, origin,
                      ": neither an architecture record nor a config; not a harvest model file");
      loaded.config = parse_config(reader.meta().config_toml, origin + " (stored config)");
      model_config = loaded.config->model;
      loaded.vocab_file = loaded.config->model.vocab;
    }
  }
  if (vocab_override) loaded.vocab_file = *vocab_override;
  HARVEST_REQUIRE(!loaded.vocab_file.empty(), Usage, origin,
                  ": the file names no vocabulary (a run with a learned vocabulary); pass --vocab");
  loaded.tokenizer = tokenizer::Tokenizer::load(loaded.vocab_file);
  const tokenizer::Tokenizer& tok = *loaded.tokenizer;
  const VocabInfo vocab{tok.vocab_size(), tok.sot_id(), tok.eot_id()};
  if (model_config) {
    loaded.options = model_options(*model_config, vocab, 0);
  } else {
    HARVEST_REQUIRE(
        vocab.size == loaded.options.vocab.size && vocab.sot_id == loaded.options.vocab.sot_id &&
            vocab.eot_id == loaded.options.vocab.eot_id,
        Config, loaded.vocab_file, ": vocabulary (", vocab.size, " tokens, SOT ", vocab.sot_id,
        ", EOT ", vocab.eot_id, ") does not fit ", origin, " (", loaded.options.vocab.size,
        " tokens, SOT ", loaded.options.vocab.sot_id, ", EOT ", loaded.options.vocab.eot_id, ")");
  }
  loaded.model = VideoTextModel(loaded.options);
  load_model_weights(file, *loaded.model);
  loaded.model->eval();
  return loaded;
}

}  // namespace harvest::eval
