#include "model/clip_import.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <set>

#include "core/json.hpp"
#include "core/error.hpp"
#include "model/safetensors/safetensors.hpp"

namespace harvest {
namespace {

namespace st = harvest::safetensors;
using Shape = std::vector<int64_t>;

std::string shape_text(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// The file's tensors seen under Hugging Face CLIPModel names, whichever layout the file uses:
// Hugging Face's own, or OpenAI's / open_clip's state-dict names (visual.conv1.weight,
// fused attn.in_proj_weight, [W, E] projections), translated here once so that every check and
// the import below speak one set of names. Messages name the file's own key (`source`).
struct ViewTensor {
  std::string source;         // the key in the file
  st::Dtype dtype = st::Dtype::F32;
  Shape shape;                // as the Hugging Face tensor would be
  int64_t row0 = 0;           // rows [row0, row0 + shape[0]) of the source (q/k/v of a fused in_proj)
  bool transpose = false;     // the source is the transpose ([W, E] projections)
};

class ClipTensors {
 public:
  explicit ClipTensors(const st::SafetensorsFile& file) : file_(file) {
    openai_ = file.contains("visual.conv1.weight") || file.contains("token_embedding.weight");
    for (const st::TensorInfo& t : file.tensors()) {
      if (!openai_) {
        add(t.name, t, 0, t.shape, false);
        continue;
      }
      if (!translate(t)) unknown_.push_back(t.name);
    }
  }

  bool openai_layout() const { return openai_; }
  bool contains(const std::string& name) const { return view_.count(name) != 0; }
  const ViewTensor& info(const std::string& name) const { return view_.at(name); }
  const std::map<std::string, ViewTensor>& tensors() const { return view_; }
  // Keys of an OpenAI-layout file with no Hugging Face counterpart (reported as unexpected).
  const std::vector<std::string>& unknown() const { return unknown_; }
  const std::vector<std::string>& problems() const { return problems_; }

  at::Tensor load(const std::string& name) const {
    const ViewTensor& v = view_.at(name);
    std::vector<float> values = file_.to_float32(v.source);
    at::Tensor t = torch::from_blob(values.data(), file_.info(v.source).shape, torch::kFloat).clone();
    if (v.transpose) t = t.t().contiguous();
    if (v.row0 != 0 || (t.dim() > 0 && t.size(0) != v.shape[0])) t = t.narrow(0, v.row0, v.shape[0]).contiguous();
    return t.reshape(v.shape);
  }

 private:
  void add(const std::string& name, const st::TensorInfo& t, int64_t row0, Shape shape, bool transpose) {
    view_[name] = ViewTensor{t.name, t.dtype, std::move(shape), row0, transpose};
  }

  // OpenAI / open_clip key -> Hugging Face key(s); false when the key has no counterpart.
  bool translate(const st::TensorInfo& t) {
    static const std::map<std::string, std::string> kFixed = {
        {"visual.conv1.weight", "vision_model.embeddings.patch_embedding.weight"},
        {"visual.class_embedding", "vision_model.embeddings.class_embedding"},
        {"visual.positional_embedding", "vision_model.embeddings.position_embedding.weight"},
        {"visual.ln_pre.weight", "vision_model.pre_layrnorm.weight"},
        {"visual.ln_pre.bias", "vision_model.pre_layrnorm.bias"},
        {"visual.ln_post.weight", "vision_model.post_layernorm.weight"},
        {"visual.ln_post.bias", "vision_model.post_layernorm.bias"},
        {"token_embedding.weight", "text_model.embeddings.token_embedding.weight"},
        {"positional_embedding", "text_model.embeddings.position_embedding.weight"},
        {"ln_final.weight", "text_model.final_layer_norm.weight"},
        {"ln_final.bias", "text_model.final_layer_norm.bias"},
        {"logit_scale", "logit_scale"},
    };
    if (const auto it = kFixed.find(t.name); it != kFixed.end()) {
      add(it->second, t, 0, t.shape, false);
      return true;
    }
    if (t.name == "visual.proj" || t.name == "text_projection") {
      if (t.shape.size() != 2) {
        problems_.push_back(cat(file_.path(), ": tensor ", t.name, " is ", shape_text(t.shape), ", expected [width, embed]"));
        return true;
      }
      add(t.name == "visual.proj" ? "visual_projection.weight" : "text_projection.weight", t, 0,
          {t.shape[1], t.shape[0]}, true);
      return true;
    }
    static const std::map<std::string, std::string> kLayer = {
        {"attn.out_proj.weight", "self_attn.out_proj.weight"}, {"attn.out_proj.bias", "self_attn.out_proj.bias"},
        {"ln_1.weight", "layer_norm1.weight"},                 {"ln_1.bias", "layer_norm1.bias"},
        {"ln_2.weight", "layer_norm2.weight"},                 {"ln_2.bias", "layer_norm2.bias"},
        {"mlp.c_fc.weight", "mlp.fc1.weight"},                 {"mlp.c_fc.bias", "mlp.fc1.bias"},
        {"mlp.c_proj.weight", "mlp.fc2.weight"},               {"mlp.c_proj.bias", "mlp.fc2.bias"},
    };
    for (const auto& [from, to] : {std::pair<std::string, std::string>{"visual.transformer.resblocks.", "vision_model.encoder.layers."},
                                   {"transformer.resblocks.", "text_model.encoder.layers."}}) {
      if (t.name.rfind(from, 0) != 0) continue;
      const std::string rest = t.name.substr(from.size());
      const size_t dot = rest.find('.');
      if (dot == 0 || dot == std::string::npos || dot > 6 || rest.find_first_not_of("0123456789") < dot) return false;
      const std::string layer = to + rest.substr(0, dot + 1);
      const std::string key = rest.substr(dot + 1);
      if (const auto it = kLayer.find(key); it != kLayer.end()) {
        add(layer + it->second, t, 0, t.shape, false);
        return true;
      }
      if (key == "attn.in_proj_weight" || key == "attn.in_proj_bias") {
        if (t.shape.empty() || t.shape[0] % 3 != 0) {
          problems_.push_back(cat(file_.path(), ": tensor ", t.name, " is ", shape_text(t.shape),
                                  "; a fused q/k/v projection has 3 x width rows"));
          return true;
        }
        Shape part = t.shape;
        part[0] /= 3;
        const char* suffix = key == "attn.in_proj_weight" ? ".weight" : ".bias";
        const char* names[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"};
        for (int64_t i = 0; i < 3; ++i) add(layer + names[i] + suffix, t, i * part[0], part, false);
        return true;
      }
      return false;
    }
    return false;
  }

  const st::SafetensorsFile& file_;
  bool openai_ = false;
  std::map<std::string, ViewTensor> view_;
  std::vector<std::string> unknown_;
  std::vector<std::string> problems_;
};

// Tensors a HF CLIPModel file holds that are not weights (registered buffers), skipped.
bool is_ignored_buffer(const std::string& name) {
  return name == "vision_model.embeddings.position_ids" || name == "text_model.embeddings.position_ids";
}

// Number of layers under `prefix` ("vision_model.encoder.layers."): one more than the largest
// index; gaps show up later as missing tensors.
int64_t count_layers(const ClipTensors& file, const std::string& prefix) {
  int64_t layers = 0;
  for (const auto& [name, t] : file.tensors()) {
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string rest = name.substr(prefix.size());
    const size_t dot = rest.find('.');
    if (dot == 0 || dot == std::string::npos) continue;
    const std::string index = rest.substr(0, dot);
    if (index.find_first_not_of("0123456789") != std::string::npos || index.size() > 6) continue;
    layers = std::max<int64_t>(layers, std::stoll(index) + 1);
  }
  return layers;
}

// The HF tensors of one encoder layer and their shapes.
void layer_tensors(std::map<std::string, Shape>& out, const std::string& prefix, int64_t width) {
  for (const char* p : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
    out[prefix + "self_attn." + p + ".weight"] = {width, width};
    out[prefix + "self_attn." + p + ".bias"] = {width};
  }
  for (const char* n : {"layer_norm1", "layer_norm2"}) {
    out[prefix + n + ".weight"] = {width};
    out[prefix + n + ".bias"] = {width};
  }
  out[prefix + "mlp.fc1.weight"] = {4 * width, width};
  out[prefix + "mlp.fc1.bias"] = {4 * width};
  out[prefix + "mlp.fc2.weight"] = {width, 4 * width};
  out[prefix + "mlp.fc2.bias"] = {width};
}

std::map<std::string, Shape> expected_tensors(const ModelOptions& o) {
  std::map<std::string, Shape> out;
  const int64_t vw = o.vision.width, tw = o.text.width, p = o.vision.patch_size;
  out["vision_model.embeddings.patch_embedding.weight"] = {vw, 3, p, p};
  out["vision_model.embeddings.class_embedding"] = {vw};
  out["vision_model.embeddings.position_embedding.weight"] = {o.vision.patches_per_frame() + 1, vw};
  for (const char* n : {"vision_model.pre_layrnorm", "vision_model.post_layernorm"}) {
    out[std::string(n) + ".weight"] = {vw};
    out[std::string(n) + ".bias"] = {vw};
  }
  for (int64_t i = 0; i < o.vision.layers; ++i)
    layer_tensors(out, "vision_model.encoder.layers." + std::to_string(i) + ".", vw);
  out["visual_projection.weight"] = {o.embed_dim, vw};
  out["text_model.embeddings.token_embedding.weight"] = {o.vocab.size, tw};
  out["text_model.embeddings.position_embedding.weight"] = {o.text.max_positions, tw};
  for (int64_t i = 0; i < o.text.layers; ++i)
    layer_tensors(out, "text_model.encoder.layers." + std::to_string(i) + ".", tw);
  out["text_model.final_layer_norm.weight"] = {tw};
  out["text_model.final_layer_norm.bias"] = {tw};
  out["text_projection.weight"] = {o.embed_dim, tw};
  out["logit_scale"] = {};
  return out;
}

// First dimension of `name`, or `fallback` when absent or of rank < 1.
int64_t dim_of(const ClipTensors& file, const std::string& name, size_t dim, int64_t fallback) {
  if (!file.contains(name)) return fallback;
  const Shape& shape = file.info(name).shape;
  return shape.size() > dim ? shape[dim] : fallback;
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  HARVEST_REQUIRE(in, Runtime, path, ": cannot open the Hugging Face config");
  nlohmann::json j = parse_json_or_discarded(in);
  HARVEST_REQUIRE(j.is_object(), Config, path, ": not a JSON object (malformed, or nested deeper than ",
                  kMaxJsonDepth, " levels)");
  return j;
}

// Reads `key` of config.json's `section` when present; a non-integer value is a problem.
std::optional<int64_t> json_int(const nlohmann::json& config, const std::string& section, const std::string& key,
                                const std::string& path, std::vector<std::string>& problems) {
  const nlohmann::json* scope = &config;
  if (!section.empty()) {
    if (!config.contains(section) || !config[section].is_object()) return std::nullopt;
    scope = &config[section];
  }
  if (!scope->contains(key)) return std::nullopt;
  const nlohmann::json& v = (*scope)[key];
  if (!v.is_number_integer()) {
    problems.push_back(cat(path, ": ", section.empty() ? "" : section + ".", key, " must be an integer"));
    return std::nullopt;
  }
  return v.get<int64_t>();
}

void check_config(const nlohmann::json& config, const std::string& section, const std::string& path,
                  int64_t width, int64_t layers, std::vector<std::string>& problems) {
  const auto hidden = json_int(config, section, "hidden_size", path, problems);
  if (hidden && *hidden != width)
    problems.push_back(cat(path, ": ", section, ".hidden_size is ", *hidden, " but the weights are ", width, " wide"));
  const auto count = json_int(config, section, "num_hidden_layers", path, problems);
  if (count && *count != layers)
    problems.push_back(cat(path, ": ", section, ".num_hidden_layers is ", *count, " but the weights have ", layers));
  const auto inter = json_int(config, section, "intermediate_size", path, problems);
  if (inter && *inter != 4 * width)
    problems.push_back(cat(path, ": ", section, ".intermediate_size is ", *inter,
                           "; harvest's blocks (CLIP's) need 4 x hidden_size = ", 4 * width));
  if (config.contains(section) && config[section].contains("layer_norm_eps")) {
    const nlohmann::json& eps = config[section]["layer_norm_eps"];
    if (!eps.is_number() || std::abs(eps.get<double>() - 1e-5) > 1e-12)
      problems.push_back(cat(path, ": ", section, ".layer_norm_eps is ", json_excerpt(eps), "; harvest uses CLIP's 1e-5"));
  }
}

int64_t heads_for(const std::optional<nlohmann::json>& config, const std::string& section, const std::string& path,
                  int64_t width, std::vector<std::string>& problems) {
  if (config) {
    if (const auto heads = json_int(*config, section, "num_attention_heads", path, problems)) {
      if (*heads <= 0 || width % *heads != 0)
        problems.push_back(cat(path, ": ", section, ".num_attention_heads = ", *heads, " does not divide the width ",
                               width));
      return *heads;
    }
  }
  return std::max<int64_t>(1, width / 64);
}

// The towers' MLP activation. Shapes cannot tell quick_gelu from gelu, so it comes from
// config.json's hidden_act (Hugging Face's default, quick_gelu, when a section omits it) or from
// --activation; with neither the import is refused rather than guessed.
std::string tower_activation(const std::optional<nlohmann::json>& config, const std::string& section,
                             const ClipImportOptions& in, const std::string& path, std::vector<std::string>& problems) {
  std::string act = "quick_gelu";
  bool known = false;
  if (config) {
    known = true;
    if (config->contains(section) && (*config)[section].is_object() && (*config)[section].contains("hidden_act")) {
      const nlohmann::json& v = (*config)[section]["hidden_act"];
      if (!v.is_string() || !is_known_activation(v.get<std::string>())) {
        problems.push_back(cat(path, ": ", section, ".hidden_act is ",
                               v.is_string() ? "\"" + v.get<std::string>().substr(0, 64) + "\"" : std::string("not a string"),
                               "; harvest implements quick_gelu and gelu"));
        return act;
      }
      act = v.get<std::string>();
    }
  }
  if (in.activation) {
    if (!is_known_activation(*in.activation)) {
      problems.push_back(cat("--activation ", in.activation->substr(0, 64), ": harvest implements quick_gelu and gelu"));
      return act;
    }
    if (known && *in.activation != act)
      problems.push_back(cat("--activation ", *in.activation, " disagrees with ", path, ": ", section, ".hidden_act is ", act));
    act = *in.activation;
    known = true;
  }
  if (!known && section == "vision_config")  // one message for both towers
    problems.push_back(cat(in.weights, ": the MLP activation cannot be read from the weights; pass --hf-config "
                                       "config.json or --activation quick_gelu|gelu (OpenAI's CLIPs use quick_gelu, "
                                       "most open_clip / LAION models gelu)"));
  return act;
}

}  // namespace

std::string matching_preset(const ModelOptions& options) {
  for (const char* name : {"tiny", "S/16", "B/16", "L/14"}) {
    const ModelOptions p = preset_options(name);
    if (p.embed_dim == options.embed_dim && p.vision.width == options.vision.width &&
        p.vision.layers == options.vision.layers && p.vision.heads == options.vision.heads &&
        p.vision.patch_size == options.vision.patch_size && p.text.width == options.text.width &&
        p.text.layers == options.text.layers && p.text.heads == options.text.heads)
      return name;
  }
  return "";
}

ClipArchitecture inspect_hf_clip(const ClipImportOptions& in) {
  const st::SafetensorsFile st_file = st::SafetensorsFile::open(in.weights);
  const ClipTensors file(st_file);
  ClipArchitecture arch;
  arch.layout = file.openai_layout() ? "openai" : "hf";
  std::vector<std::string>& problems = arch.problems;
  problems = file.problems();
  std::optional<nlohmann::json> config;
  const std::string config_path = in.hf_config.value_or("");
  if (in.hf_config) config = read_json(*in.hf_config);

  ModelOptions& o = arch.options;
  o.preset = "";
  o.vision.width = dim_of(file, "vision_model.embeddings.class_embedding", 0, 0);
  o.vision.patch_size = dim_of(file, "vision_model.embeddings.patch_embedding.weight", 2, 0);
  o.vision.layers = count_layers(file, "vision_model.encoder.layers.");
  o.text.width = dim_of(file, "text_model.embeddings.token_embedding.weight", 1, 0);
  o.text.layers = count_layers(file, "text_model.encoder.layers.");
  // Layer counts come from the largest index a tensor name carries; each layer has 16 tensors,
  // so a count beyond the file's own tensors is a crafted or broken name, not an architecture
  // (one tensor named layers.99999 once produced 3.2 million "missing" lines).
  const auto tensor_count = static_cast<int64_t>(file.tensors().size());
  using TowerLayers = std::pair<int64_t*, const char*>;
  for (const auto& [layers, tower] : {TowerLayers{&o.vision.layers, "vision_model"}, TowerLayers{&o.text.layers, "text_model"}}) {
    if (*layers * 16 <= tensor_count) continue;
    problems.push_back(cat(in.weights, ": ", tower, ".encoder.layers.", *layers - 1, " implies ", *layers,
                           " layers (", *layers * 16, " tensors) but the file holds ", tensor_count, " tensors"));
    *layers = 0;
  }
  o.text.max_positions = dim_of(file, "text_model.embeddings.position_embedding.weight", 0, 77);
  o.embed_dim = dim_of(file, "visual_projection.weight", 0, dim_of(file, "text_projection.weight", 0, 0));
  const int64_t vocab_rows = dim_of(file, "text_model.embeddings.token_embedding.weight", 0, in.vocab.size);
  const int64_t positions = dim_of(file, "vision_model.embeddings.position_embedding.weight", 0, 0);
  const auto grid = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(std::max<int64_t>(positions - 1, 0)))));
  o.vision.image_size = grid * o.vision.patch_size;
  if (positions > 0 && grid * grid + 1 != positions)
    problems.push_back(cat(in.weights, ": vision_model.embeddings.position_embedding.weight has ", positions,
                           " rows; expected a square grid of patches + 1 (CLS)"));
  if (o.vision.width <= 0 || o.vision.patch_size <= 0 || o.vision.layers <= 0)
    problems.push_back(cat(in.weights, ": no usable vision tower (vision_model.embeddings.class_embedding, "
                                       "patch_embedding.weight and encoder.layers.<i> are needed)"));
  if (o.text.width <= 0 || o.text.layers <= 0)
    problems.push_back(cat(in.weights, ": no usable text tower (text_model.embeddings.token_embedding.weight and "
                                       "encoder.layers.<i> are needed)"));
  if (o.embed_dim <= 0)
    problems.push_back(cat(in.weights, ": no projection (visual_projection.weight, text_projection.weight)"));
  o.vision.activation = tower_activation(config, "vision_config", in, config_path, problems);
  o.text.activation = tower_activation(config, "text_config", in, config_path, problems);
  o.vision.heads = heads_for(config, "vision_config", config_path, o.vision.width, problems);
  o.text.heads = heads_for(config, "text_config", config_path, o.text.width, problems);
  if (config) {
    check_config(*config, "vision_config", config_path, o.vision.width, o.vision.layers, problems);
    check_config(*config, "text_config", config_path, o.text.width, o.text.layers, problems);
    if (const auto proj = json_int(*config, "", "projection_dim", config_path, problems); proj && *proj != o.embed_dim)
      problems.push_back(cat(config_path, ": projection_dim is ", *proj, " but the projections are ", o.embed_dim));
  }

  o.vocab = in.vocab;
  if (vocab_rows != in.vocab.size)
    problems.push_back(cat(in.weights, ": text_model.embeddings.token_embedding.weight has ", vocab_rows,
                           " rows but the vocabulary has ", in.vocab.size, " tokens"));
  o.vision.frames = in.frames;
  o.text.context_length = in.context_length;
  o.fusion_layers = in.fusion_layers;
  o.seed = in.seed;
  o.freeze_text = true;
  if (in.context_length > o.text.max_positions)
    problems.push_back(cat("--context-length ", in.context_length, " exceeds the ", o.text.max_positions,
                           " text positions of ", in.weights));

  // Missing / mis-shaped / unexpected, by name.
  if (o.vision.width > 0 && o.vision.patch_size > 0 && o.text.width > 0) {
    const std::map<std::string, Shape> expected = expected_tensors(o);
    for (const auto& [name, shape] : expected) {
      if (!file.contains(name)) {
        problems.push_back(cat(in.weights, ": missing tensor ", name, " ", shape_text(shape)));
        continue;
      }
      const ViewTensor& t = file.info(name);
      const std::string shown = t.source == name ? name : cat(t.source, " (", name, ")");
      if (t.shape != shape)
        problems.push_back(cat(in.weights, ": tensor ", shown, " is ", shape_text(t.shape), ", expected ",
                               shape_text(shape)));
      if (t.dtype != st::Dtype::F32 && t.dtype != st::Dtype::F16 && t.dtype != st::Dtype::BF16)
        problems.push_back(cat(in.weights, ": tensor ", shown, " is ", st::to_string(t.dtype),
                               "; CLIP weights must be F32, F16 or BF16"));
    }
    for (const auto& [name, t] : file.tensors()) {
      if (expected.count(name)) continue;
      if (is_ignored_buffer(name)) {
        arch.ignored.push_back(name);
        continue;
      }
      problems.push_back(cat(in.weights, ": unexpected tensor ", t.source, " ", shape_text(t.shape)));
    }
    for (const std::string& name : file.unknown())
      problems.push_back(cat(in.weights, ": unexpected tensor ", name, " ", shape_text(st_file.info(name).shape),
                             " (no counterpart in OpenAI's / open_clip's CLIP)"));
  }
  if (problems.empty()) {
    try {
      validate(o);
    } catch (const Error& e) {
      problems.push_back(cat(in.weights, ": ", e.what()));
    }
    o.preset = matching_preset(o);
  }
  return arch;
}

VideoTextModel import_hf_clip(const ClipImportOptions& in) {
  const ClipArchitecture arch = inspect_hf_clip(in);
  if (!arch.problems.empty()) {
    std::string text = cat(in.weights, ": cannot import as a CLIP model (", arch.problems.size(), " problem",
                           arch.problems.size() == 1 ? "" : "s", "):");
    // Enough to act on; a file with thousands of problems is not a CLIP checkpoint anyway.
    constexpr size_t kShown = 50;
    for (size_t i = 0; i < std::min(arch.problems.size(), kShown); ++i) text += "\n  " + arch.problems[i];
    if (arch.problems.size() > kShown) text += cat("\n  ... and ", arch.problems.size() - kShown, " more");
    fail(ErrorKind::Config, text);
  }
  const st::SafetensorsFile st_file = st::SafetensorsFile::open(in.weights);
  const ClipTensors file(st_file);
  VideoTextModel model(arch.options);
  torch::NoGradGuard no_grad;
  auto put = [&](at::Tensor& dst, const at::Tensor& src) {
    HARVEST_ASSERT(dst.sizes() == src.sizes(), "import shape ", src.sizes(), " vs ", dst.sizes());
    dst.copy_(src);
  };
  auto get = [&](const std::string& name) { return file.load(name); };
  auto import_layers = [&](Transformer& transformer, const std::string& prefix) {
    for (int64_t i = 0; i < transformer->layers(); ++i) {
      const std::string p = prefix + std::to_string(i) + ".";
      ResidualBlockImpl& b = *transformer->resblocks->ptr<ResidualBlockImpl>(static_cast<size_t>(i));
      put(b.attn->in_proj_weight, at::cat({get(p + "self_attn.q_proj.weight"), get(p + "self_attn.k_proj.weight"),
                                           get(p + "self_attn.v_proj.weight")}));
      put(b.attn->in_proj_bias, at::cat({get(p + "self_attn.q_proj.bias"), get(p + "self_attn.k_proj.bias"),
                                         get(p + "self_attn.v_proj.bias")}));
      put(b.attn->out_proj->weight, get(p + "self_attn.out_proj.weight"));
      put(b.attn->out_proj->bias, get(p + "self_attn.out_proj.bias"));
      put(b.ln_1->weight, get(p + "layer_norm1.weight"));
      put(b.ln_1->bias, get(p + "layer_norm1.bias"));
      put(b.ln_2->weight, get(p + "layer_norm2.weight"));
      put(b.ln_2->bias, get(p + "layer_norm2.bias"));
      put(b.mlp->c_fc->weight, get(p + "mlp.fc1.weight"));
      put(b.mlp->c_fc->bias, get(p + "mlp.fc1.bias"));
      put(b.mlp->c_proj->weight, get(p + "mlp.fc2.weight"));
      put(b.mlp->c_proj->bias, get(p + "mlp.fc2.bias"));
    }
  };
  VideoEncoderImpl& v = *model->visual;
  put(v.conv1->weight, get("vision_model.embeddings.patch_embedding.weight"));
  put(v.class_embedding, get("vision_model.embeddings.class_embedding"));
  put(v.positional_embedding, get("vision_model.embeddings.position_embedding.weight"));
  put(v.ln_pre->weight, get("vision_model.pre_layrnorm.weight"));
  put(v.ln_pre->bias, get("vision_model.pre_layrnorm.bias"));
  import_layers(v.transformer, "vision_model.encoder.layers.");
  put(v.ln_post->weight, get("vision_model.post_layernorm.weight"));
  put(v.ln_post->bias, get("vision_model.post_layernorm.bias"));
  put(v.proj, get("visual_projection.weight").t());

  TextEncoderImpl& t = *model->text;
  put(t.token_embedding->weight, get("text_model.embeddings.token_embedding.weight"));
  put(t.positional_embedding, get("text_model.embeddings.position_embedding.weight"));
  import_layers(t.transformer, "text_model.encoder.layers.");
  put(t.ln_final->weight, get("text_model.final_layer_norm.weight"));
  put(t.ln_final->bias, get("text_model.final_layer_norm.bias"));
  put(t.text_projection, get("text_projection.weight").t());
  put(model->logit_scale, get("logit_scale").reshape({}));
  return model;
}

}  // namespace harvest
