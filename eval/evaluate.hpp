// One zero-shot eval of one checkpoint on one task (`harvest eval`, and each step of a sweep):
// load the model (optionally WiSE-FT averaged with its base), embed the manifest's videos and
// texts, score, and describe the result together with its protocol (docs/eval.md): the JSON
// record holds every metric and every setting a reader needs to compare numbers.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "eval/cancel.hpp"
#include "eval/eval_set.hpp"
#include "eval/model_file.hpp"

namespace harvest::eval {

struct ModelSpec {
  std::string checkpoint;       // any form resolve_model_path() takes
  std::string vocab;            // empty: the one the checkpoint names
  double wise_ft_alpha = 0.0;   // the base model's weight; 0: off
  std::string base_checkpoint;  // required when wise_ft_alpha > 0
  std::string device = "cpu";   // cpu | cuda | cuda:N | auto (cuda when one is visible)
};

struct EvalModel {
  LoadedModel loaded;
  ModelSpec spec;
  int64_t base_step = 0;
  std::string device;  // where it runs ("cpu", "cuda:0")
};

// "cpu", "cuda", "cuda:N" or "auto"; throws Usage naming --device when absent or malformed.
at::Device parse_device(const std::string& text);

// Throws naming the file on a checkpoint with missing, unexpected or mis-shaped tensors.
EvalModel load_eval_model(const ModelSpec& spec);

struct EvalOptions {
  Task task = Task::Retrieval;
  std::string manifest;
  std::string root;         // video paths are relative to this; empty: the manifest's folder
  int64_t frames = 0;       // 0: the model's
  int64_t size = 0;         // input size; 0: the model's (the only one it takes)
  int64_t batch_size = 32;  // clips per forward pass
  int threads = 1;          // decode threads (LibTorch's are the caller's to set)
  CaptionUse captions = CaptionUse::All;
  bool dsl = false;  // also report dual-softmax re-scoring
  double dsl_scale = 100.0;
  std::string classes_file, templates_file;  // classification
  std::string save_embeddings;               // HDF5 path; empty: not saved
  bool progress = true;
  const std::atomic<bool>* cancel = nullptr;  // set: checked between batches (throws Cancelled)
};

// Checks the options against the task before any work (throws Usage naming the flag).
void check_options(const EvalOptions& options);

// {"task", metrics..., "protocol": {...}, "timing": {...}[, "embeddings": path]}
nlohmann::ordered_json evaluate(EvalModel& model, const EvalOptions& options);

// The record as a readable block: the protocol, then the metrics as a table.
std::string format_result(const nlohmann::ordered_json& result);

// The tie rule as stated in every result.
extern const char* const kTieRule;

}  // namespace harvest::eval
