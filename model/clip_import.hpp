// CLIP weight import: a CLIP safetensors file (F32, F16 or BF16) under Hugging Face CLIPModel
// names or OpenAI's / open_clip's state-dict names -> a VideoTextModel whose vision and text
// towers are exactly CLIP's (docs/model.md maps the names). The MLP activation (quick_gelu or
// gelu) comes from config.json or --activation: the weights cannot tell.
// The architecture is read from the tensors' shapes (widths, layers, patch, image size, vocabulary,
// projection); head counts come from config.json when given, else width / 64 (CLIP's rule). The
// parts CLIP lacks keep their initialisation: the temporal embedding (zeros), the MLM fusion head
// and the [MASK] vector.
//
// Every problem is found before anything is built: missing, unexpected and mis-shaped tensors
// are all listed by name in one Config error, with the file's path.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "model/options.hpp"
#include "model/video_text_model.hpp"

namespace harvest {

struct ClipImportOptions {
  std::string weights;                  // model.safetensors
  std::optional<std::string> hf_config;  // config.json (head counts, activation, epsilon)
  std::optional<std::string> activation;  // quick_gelu | gelu, when no config.json says
  VocabInfo vocab;                      // the tokenizer's; must match the token embedding
  int64_t frames = 8;                   // rows of the (zero) temporal embedding
  int64_t context_length = 77;          // text positions used, <= CLIP's table
  int64_t fusion_layers = 2;
  uint64_t seed = 42;                   // initialisation of the new parts
};

struct ClipArchitecture {
  ModelOptions options;
  std::vector<std::string> problems;  // empty: importable
  std::vector<std::string> ignored;   // tensors read but not needed (position_ids buffers)
  std::string layout;                 // "hf" (Hugging Face names) or "openai" (OpenAI / open_clip)
};

// Reads only the header (and config.json): the architecture the file implies and every problem
// with it. Throws Runtime/Config only when the files cannot be read at all.
ClipArchitecture inspect_hf_clip(const ClipImportOptions& options);

// The model with CLIP's weights in place. Throws Config listing every problem, naming the file.
VideoTextModel import_hf_clip(const ClipImportOptions& options);

// The preset whose architecture equals `options` at its image size ("B/16", ...), or "".
std::string matching_preset(const ModelOptions& options);

}  // namespace harvest
