// VideoEncoder: CLIP's ViT applied jointly to all frames of a clip (DESIGN.md section 1).
//   tokens = [CLS, frame0 patches, frame1 patches, ...]; patch embedding per frame (conv, no bias);
//   CLIP's spatial position embedding shared by every frame; a learnable temporal embedding
//   [T, W], zero at init, added to every patch of frame t; optional patch dropping (gather);
//   ln_pre, pre-norm blocks with joint space-time attention, ln_post, CLS @ proj.
// Parameter names follow CLIP's `visual.*` tree (conv1.weight, class_embedding,
// positional_embedding, ln_pre, transformer.resblocks.*, ln_post, proj) plus temporal_embedding.
#pragma once

#include <torch/torch.h>

#include "model/options.hpp"
#include "model/transformer.hpp"

namespace harvest {

struct VideoEncoding {
  at::Tensor embedding;  // [B, embed_dim], not normalised
  at::Tensor tokens;     // [B, 1 + kept, W] after ln_post (what the MLM fusion head attends to)
};

class VideoEncoderImpl : public torch::nn::Module {
 public:
  VideoEncoderImpl(const VisionOptions& options, int64_t embed_dim, at::Generator& gen);

  // video: normalised float [B, T, 3, H, W] (H = W = image_size). T may differ from
  // options.frames: the temporal embedding is then linearly interpolated to T.
  // keep: [B, K] int64 indices into the T x N patch tokens (frame-major) to keep, or undefined
  // to keep all. Gathered before ln_pre, so dropped tokens never enter the transformer.
  VideoEncoding forward(const at::Tensor& video, const at::Tensor& keep = {});

  // CLIP's image path: images [B, 3, H, W], no temporal embedding. Equals forward() of a 1-frame
  // video when the temporal embedding is zero.
  at::Tensor encode_image(const at::Tensor& images);

  // The temporal embedding resampled to `frames` rows ([frames, W]).
  at::Tensor temporal_embedding_for(int64_t frames) const;

  const VisionOptions& options() const { return options_; }

  torch::nn::Conv2d conv1{nullptr};
  at::Tensor class_embedding, positional_embedding, temporal_embedding, proj;
  torch::nn::LayerNorm ln_pre{nullptr}, ln_post{nullptr};
  Transformer transformer{nullptr};

 private:
  // [B*T, N, W] patch tokens with the spatial position embedding added.
  at::Tensor patch_tokens(const at::Tensor& frames);
  VideoEncoding encode_tokens(const at::Tensor& cls, const at::Tensor& patches);

  VisionOptions options_;
};
TORCH_MODULE(VideoEncoder);

}  // namespace harvest
