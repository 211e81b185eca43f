// VideoTextModel: the whole trainable model (video encoder, CLIP text encoder, MLM fusion head,
// temperature) and the loss of one batch. Knows nothing of processes: data parallelism enters
// only through the Collective handed to forward().
//
// Batch format: video uint8 [B, T, H, W, 3] (what loaders ship; the worker moves it to its
// device and normalize_video() turns it into float [B, T, 3, H, W] with CLIP's mean/std there),
// text int64 [B, L] ids [SOT, ..., EOT, padding].
//
// Parameter names (CLIP's tree under visual./text., new parts named for what they are):
//   visual.conv1.weight, visual.class_embedding, visual.positional_embedding,
//   visual.temporal_embedding, visual.ln_pre.*, visual.transformer.resblocks.<i>.*,
//   visual.ln_post.*, visual.proj, text.token_embedding.weight, text.positional_embedding,
//   text.transformer.resblocks.<i>.*, text.ln_final.*, text.text_projection, text.mask_embedding,
//   fusion.*, logit_scale. docs/model.md maps them from Hugging Face CLIPModel names.
#pragma once

#include <torch/torch.h>

#include <optional>

#include "model/collective.hpp"
#include "model/fusion_head.hpp"
#include "model/options.hpp"
#include "model/patch_dropper.hpp"
#include "model/text_encoder.hpp"
#include "model/text_masker.hpp"
#include "model/video_encoder.hpp"

namespace harvest {

// CLIP's pixel statistics (RGB, on [0, 1] values).
struct PixelNorm {
  double mean[3] = {0.48145466, 0.4578275, 0.40821073};
  double std[3] = {0.26862954, 0.26130258, 0.27577711};
};

// uint8 [B, T, H, W, 3] -> float [B, T, 3, H, W] normalised, on the input's device.
at::Tensor normalize_video(const at::Tensor& video, const PixelNorm& norm = {});

struct LossWeights {
  double vtc = 1.0;
  double mlm = 1.0;
};

struct LossParts {
  at::Tensor total;        // back-propagate this (see losses.hpp for the multi-worker contract)
  at::Tensor vtc;          // detached: global-batch contrastive loss (equal on every rank)
  at::Tensor mlm;          // detached: mean CE over every rank's masked tokens (0 when none)
  at::Tensor logit_scale;  // detached: the logit scale used
  int64_t masked_tokens = 0;  // over all ranks
  int64_t video_tokens = 0;   // sequence length that entered the video transformer (1 + kept)
};

// The random choices of one step, explicit so that tests and exact resume can pin them.
struct StepRandomness {
  at::Tensor keep;                   // [B, K] kept patch indices, undefined: keep all
  std::optional<MaskedText> masked;  // MLM inputs, nullopt: no MLM this step
};

struct ParamGroups {
  std::vector<at::Tensor> decay;     // weight matrices
  std::vector<at::Tensor> no_decay;  // biases, norms, embeddings, temperature
};

class VideoTextModelImpl : public torch::nn::Module {
 public:
  explicit VideoTextModelImpl(const ModelOptions& options);

  // One training batch: draws the step's randomness (patch dropping and text masking, only in
  // training mode) and returns the loss parts. video uint8 [B, T, H, W, 3], text int64 [B, L].
  LossParts forward(const at::Tensor& video, const at::Tensor& text, Collective& collective,
                    const LossWeights& weights = {});

  // The same with normalised float video [B, T, 3, H, W] and the randomness given.
  LossParts forward_with(const at::Tensor& video, const at::Tensor& text, Collective& collective,
                         const LossWeights& weights, const StepRandomness& randomness);

  // Draws this step's randomness as forward() would (no dropping/masking in eval mode).
  StepRandomness draw_randomness(int64_t batch, int64_t frames, const at::Tensor& text, bool with_mlm);

  // The generators of patch dropping and text masking, derived from (seed, rank) so that ranks
  // differ and a run is reproducible. Their states are what a checkpoint must save.
  void seed_sampling(uint64_t seed, int rank);
  PatchDropper& dropper() { return dropper_; }
  TextMasker& masker() { return masker_; }

  // The text tower (everything under text.) stops or starts training.
  void set_text_trainable(bool trainable);
  void set_bf16_autocast(bool on) { bf16_autocast_ = on; }
  // Patch dropping from the next training forward on (0: off, the unmasked phase). The dropper's
  // generator is untouched, so a step's draw depends only on the steps before it.
  void set_drop_ratio(double drop_ratio);

  ParamGroups param_groups();
  // Keeps the temperature >= 0.01: logit_scale clamped in place to [0, ln(kMaxLogitScale)].
  // Called after every optimizer step (and at construction), never inside the forward.
  void clamp_logit_scale();
  const ModelOptions& options() const { return options_; }

  VideoEncoder visual{nullptr};
  TextEncoder text{nullptr};
  FusionHead fusion{nullptr};
  at::Tensor logit_scale;

 private:
  ModelOptions options_;
  PatchDropper dropper_;
  TextMasker masker_;
  bool bf16_autocast_ = false;
};
TORCH_MODULE(VideoTextModel);

}  // namespace harvest
