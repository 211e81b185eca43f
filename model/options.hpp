// ModelOptions: every shape and recipe number the model needs, resolved once from a preset,
// the [model] config section and the tokenizer's vocabulary. Plain data (no LibTorch), so the
// config layer, loaders and tools can reason about shapes without linking LibTorch.
#pragma once

#include <cstdint>
#include <string>

#include "core/config/config.hpp"

namespace harvest {

struct VisionOptions {
  int64_t width = 128;
  int64_t layers = 2;
  int64_t heads = 4;
  int64_t patch_size = 16;
  int64_t image_size = 112;  // input side in pixels, a multiple of patch_size
  int64_t frames = 8;        // T the temporal embedding is sized for (other T interpolate it)
  std::string activation = "quick_gelu";  // MLP activation: quick_gelu | gelu

  int64_t grid() const { return image_size / patch_size; }
  int64_t patches_per_frame() const { return grid() * grid(); }
};

struct TextOptions {
  int64_t width = 128;
  int64_t layers = 2;
  int64_t heads = 4;
  int64_t context_length = 32;  // tokens per caption incl. SOT/EOT
  int64_t max_positions = 77;   // CLIP's position table; the first context_length are used
  std::string activation = "quick_gelu";  // MLP activation: quick_gelu | gelu
};

// What the model needs to know about the tokenizer's vocabulary. CLIP's: 49408 ids, SOT 49406,
// EOT 49407. Padding is every position after EOT (CLIP pads with id 0, which is also a token).
struct VocabInfo {
  int64_t size = 49408;
  int64_t sot_id = 49406;
  int64_t eot_id = 49407;
};

struct ModelOptions {
  std::string preset = "tiny";
  int64_t embed_dim = 128;  // joint video-text embedding size
  VisionOptions vision;
  TextOptions text;
  VocabInfo vocab;
  int64_t fusion_layers = 2;  // cross-modal MLM head; width and heads follow the text tower

  double drop_ratio = 0.9;  // video patch tokens dropped per sample in training
  double text_mask_ratio = 0.5;
  double mask_token_prob = 0.8;
  double random_token_prob = 0.1;
  double temperature_init = 0.01;
  bool freeze_text = true;
  bool grad_checkpointing = false;
  uint64_t seed = 42;  // weight initialisation
};

// The MLP activations harvest implements: "quick_gelu" and "gelu". Every place that reads an
// activation name from a file or flag asks here.
bool is_known_activation(const std::string& name);

// Architecture of a preset (tiny, S/16, B/16, L/14); everything else keeps its default.
// Throws Config naming model.preset for an unknown name.
ModelOptions preset_options(const std::string& preset);

// The preset's architecture plus the [model] section's recipe numbers, the tokenizer's vocabulary
// and the weight-initialisation seed. Validates what the config layer cannot know (vocab ids).
ModelOptions model_options(const ModelConfig& config, const VocabInfo& vocab, uint64_t seed);

// Throws Config naming the field when shapes do not fit together (heads divide widths, image
// size a multiple of the patch, context within the position table, special ids inside vocab).
void validate(const ModelOptions& options);

// Patch tokens kept per sample: round((1 - drop) x patches), at least 1 when any are dropped.
int64_t kept_patch_count(int64_t patches, double drop_ratio);

}  // namespace harvest
