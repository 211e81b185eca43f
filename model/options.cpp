#include "model/options.hpp"

#include <cmath>

#include "core/error.hpp"

namespace harvest {
namespace {

ModelOptions make(const std::string& name, int64_t embed, VisionOptions vision, TextOptions text) {
  ModelOptions o;
  o.preset = name;
  o.embed_dim = embed;
  o.vision = vision;
  o.text = text;
  return o;
}

VisionOptions vision(int64_t width, int64_t layers, int64_t heads, int64_t patch, int64_t size) {
  VisionOptions v;
  v.width = width;
  v.layers = layers;
  v.heads = heads;
  v.patch_size = patch;
  v.image_size = size;
  return v;
}

TextOptions text(int64_t width, int64_t layers, int64_t heads) {
  TextOptions t;
  t.width = width;
  t.layers = layers;
  t.heads = heads;
  return t;
}

}  // namespace

bool is_known_activation(const std::string& name) { return name == "quick_gelu" || name == "gelu"; }

ModelOptions preset_options(const std::string& preset) {
  // tiny: small enough for unit tests and a CPU demo, same structure as the real presets.
  if (preset == "tiny") return make(preset, 128, vision(128, 2, 4, 16, 112), text(128, 2, 4));
  // S/16: OpenAI released no CLIP ViT-S; this is DeiT/ViT-S (384 wide, 12 layers, 6 heads)
  // with a text tower of the same width and heads and CLIP's 12 text layers, embed 384.
  if (preset == "S/16") return make(preset, 384, vision(384, 12, 6, 16, 224), text(384, 12, 6));
  if (preset == "B/16") return make(preset, 512, vision(768, 12, 12, 16, 224), text(512, 12, 8));
  if (preset == "L/14") return make(preset, 768, vision(1024, 24, 16, 14, 224), text(768, 12, 12));
  fail(ErrorKind::Config, "model.preset: unknown preset '", preset, "' (tiny, S/16, B/16, L/14)");
}

ModelOptions model_options(const ModelConfig& config, const VocabInfo& vocab, uint64_t seed) {
  ModelOptions o = preset_options(config.preset);
  o.vision.image_size = config.image_size;
  o.vision.frames = config.frames;
  o.text.context_length = config.context_length;
  o.vocab = vocab;
  o.fusion_layers = config.fusion_layers;
  o.vision.activation = config.activation;
  o.text.activation = config.activation;
  o.drop_ratio = config.drop_ratio;
  o.text_mask_ratio = config.text_mask_ratio;
  o.mask_token_prob = config.mask_token_prob;
  o.random_token_prob = config.random_token_prob;
  o.temperature_init = config.temperature_init;
  o.freeze_text = config.freeze_text;
  o.grad_checkpointing = config.grad_checkpointing;
  o.seed = seed;
  validate(o);
  return o;
}

void validate(const ModelOptions& o) {
  auto need = [](bool ok, const char* field, const auto&... what) {
    HARVEST_REQUIRE(ok, Config, field, ": ", what...);
  };
  const VisionOptions& v = o.vision;
  const TextOptions& t = o.text;
  need(v.width > 0 && v.heads > 0 && v.width % v.heads == 0, "model vision width/heads",
       "heads (", v.heads, ") must divide the width (", v.width, ")");
  need(t.width > 0 && t.heads > 0 && t.width % t.heads == 0, "model text width/heads",
       "heads (", t.heads, ") must divide the width (", t.width, ")");
  need(v.layers > 0 && t.layers > 0, "model layers", "vision and text need at least one layer");
  need(v.patch_size > 0 && v.image_size >= v.patch_size && v.image_size % v.patch_size == 0,
       "model.image_size", "must be a multiple of the patch size ", v.patch_size, " (got ",
       v.image_size, ")");
  need(v.frames >= 1, "model.frames", "must be at least 1 (got ", v.frames, ")");
  need(t.context_length >= 2 && t.context_length <= t.max_positions, "model.context_length",
       "must be in [2, ", t.max_positions, "] (got ", t.context_length, ")");
  need(o.embed_dim > 0, "model embed_dim", "must be positive");
  need(o.fusion_layers >= 1, "model.fusion_layers", "must be at least 1");
  need(o.vocab.size >= 3, "vocabulary size", "must be at least 3 (got ", o.vocab.size, ")");
  need(o.vocab.sot_id >= 0 && o.vocab.sot_id < o.vocab.size, "vocabulary SOT id",
       o.vocab.sot_id, " is outside [0, ", o.vocab.size, ")");
  need(o.vocab.eot_id >= 0 && o.vocab.eot_id < o.vocab.size && o.vocab.eot_id != o.vocab.sot_id,
       "vocabulary EOT id", o.vocab.eot_id, " is outside [0, ", o.vocab.size, ") or equals SOT");
  need(o.drop_ratio >= 0 && o.drop_ratio < 1, "model.drop_ratio", "must be in [0, 1) (got ",
       o.drop_ratio, ")");
  need(o.text_mask_ratio >= 0 && o.text_mask_ratio < 1, "model.text_mask_ratio",
       "must be in [0, 1) (got ", o.text_mask_ratio, ")");
  need(o.mask_token_prob >= 0 && o.random_token_prob >= 0 &&
           o.mask_token_prob + o.random_token_prob <= 1.0 + 1e-12,
       "model.mask_token_prob + model.random_token_prob", "must be non-negative and sum to <= 1");
  need(o.temperature_init > 0 && o.temperature_init < 1, "model.temperature_init",
       "must be in (0, 1) (got ", o.temperature_init, ")");
}

int64_t kept_patch_count(int64_t patches, double drop_ratio) {
  const auto kept = static_cast<int64_t>(std::llround((1.0 - drop_ratio) * static_cast<double>(patches)));
  if (kept < 1) return patches > 0 ? 1 : 0;
  return kept > patches ? patches : kept;
}

}  // namespace harvest
