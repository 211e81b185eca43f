// FusionHead: the small cross-modal head of masked-language modelling. Each layer: text tokens
// self-attend (bidirectionally, padding masked out), cross-attend to the video tokens, then an
// MLP (pre-norm, residual). The prediction is tied to the text token embedding:
//   logits = LN(quick_gelu(dense(h))) @ token_embedding^T + bias.
// Width and heads follow the text tower; the cross-attention keys/values project from the
// vision width.
#pragma once

#include <torch/torch.h>

#include "model/options.hpp"
#include "model/transformer.hpp"

namespace harvest {

class CrossAttentionImpl : public torch::nn::Module {
 public:
  CrossAttentionImpl(int64_t width, int64_t context_width, int64_t heads);
  // x [B, L, W] queries; context [B, M, C] keys/values (all visible).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& context);
  void reset(at::Generator& gen, double in_std, double out_std);

  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};

 private:
  int64_t heads_;
};
TORCH_MODULE(CrossAttention);

class FusionLayerImpl : public torch::nn::Module {
 public:
  FusionLayerImpl(int64_t width, int64_t video_width, int64_t heads);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& padding_mask, const at::Tensor& video);

  torch::nn::LayerNorm ln_1{nullptr}, ln_2{nullptr}, ln_3{nullptr};
  SelfAttention attn{nullptr};
  CrossAttention cross_attn{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(FusionLayer);

class FusionHeadImpl : public torch::nn::Module {
 public:
  FusionHeadImpl(int64_t width, int64_t video_width, int64_t heads, int64_t layers, int64_t vocab_size,
                 at::Generator& gen);

  // text [B, L, W] (text encoder output), eot [B] EOT positions (later positions are padding),
  // video [B, M, video_width] -> [B, L, W] fused states.
  at::Tensor forward(const at::Tensor& text, const at::Tensor& eot, const at::Tensor& video);

  // states [N, W] -> logits [N, vocab] against the (shared) token embedding [vocab, W].
  at::Tensor predict(const at::Tensor& states, const at::Tensor& token_embedding);

  torch::nn::ModuleList layers{nullptr};
  torch::nn::Linear dense{nullptr};
  torch::nn::LayerNorm ln_head{nullptr};
  at::Tensor bias;

 private:
  std::vector<FusionLayer> layers_;
};
TORCH_MODULE(FusionHead);

}  // namespace harvest
