// Model files: harvest checkpoints read for their weights (an imported CLIP, a training
// checkpoint). `harvest import-clip` writes one; `harvest embed`, eval and sweeps load them.
//
// A model file written by write_model_file() holds the model/ records of every parameter and
// buffer (docs/checkpoint-format.md) and an `architecture` record (JSON text, u8): the shapes
// that built the model (widths, layers, heads, patch, image size, frames, context length,
// vocabulary, fusion layers) and the vocabulary file. Training checkpoints have no such record;
// their architecture follows from the resolved config they carry (model.preset and friends).
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "core/config/config.hpp"
#include "model/options.hpp"
#include "model/tokenizer/tokenizer.hpp"
#include "model/video_text_model.hpp"

namespace harvest::eval {

// ModelOptions <-> the architecture record's JSON. parse throws Config naming `origin` and the key.
std::string architecture_json(const ModelOptions& options, const std::string& vocab_file);
ModelOptions parse_architecture(const std::string& json, const std::string& origin,
                                std::string* vocab_file = nullptr);

// Writes the model's weights and architecture to `out` atomically (a .tmp file renamed into place
// after fsync; nothing is left behind on failure). `config_toml` goes into the file's metadata.
void write_model_file(VideoTextModelImpl& model, const std::string& vocab_file,
                      const std::string& config_toml, const std::filesystem::path& out);

struct LoadedModel {
  ModelOptions options;
  VideoTextModel model{nullptr};
  std::optional<tokenizer::Tokenizer> tokenizer;
  std::string vocab_file;
  std::optional<Config> config;  // the file's resolved config, when it has one
  std::filesystem::path file;    // the file the weights came from (resolve_model_path())
  int64_t step = 0;              // the checkpoint's training step (0 for an imported model)
};

// The file holding a checkpoint's weights: `path` itself when it is a file; rank 0's part of the
// newest committed checkpoint that verifies when it is a checkpoint directory (with `latest`) or
// a run folder (with checkpoints/latest);
// rank 0's part when it is one checkpoint's folder (step-...). Throws Usage naming the path.
std::filesystem::path resolve_model_path(const std::filesystem::path& path);

// Builds the model a checkpoint (any form resolve_model_path() takes) describes and loads its
// weights (eval mode, CPU). The vocabulary
// is `vocab_override` when given, else the file's. Throws naming the file and what is wrong.
LoadedModel load_model_file(const std::filesystem::path& path,
                            const std::optional<std::string>& vocab_override = {});

}  // namespace harvest::eval
