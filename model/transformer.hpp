// CLIP's pre-norm transformer, with CLIP's parameter names so imported weights are a renaming:
//   resblocks.<i>.ln_1, .attn.in_proj_weight [3W, W], .attn.in_proj_bias, .attn.out_proj,
//   .ln_2, .mlp.c_fc [4W, W], .mlp.c_proj [W, 4W].
// Tokens are batch-first [B, L, W]. Optional gradient checkpointing recomputes each block in
// backward instead of keeping its activations.
#pragma once

#include <torch/torch.h>

namespace harvest {

// x * sigmoid(1.702 x): the GELU approximation OpenAI's CLIPs were trained with.
at::Tensor quick_gelu(const at::Tensor& x);

// The MLP activation of a tower: OpenAI's CLIPs use quick_gelu, most open_clip / LAION models
// the exact (erf) GELU.
enum class Activation { quick_gelu, gelu };
// "quick_gelu" / "gelu" (is_known_activation); anything else throws Config naming `what`.
Activation parse_activation(const std::string& name, const std::string& what);

// softmax(q k^T / sqrt(d) + mask) v over [B, H, L, d]; `mask` is additive and broadcastable to
// [B, H, Lq, Lk], or undefined. LibTorch's fused kernel (flash / memory-efficient on CUDA).
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask);

// Fills `tensor` from N(0, std) drawn from `gen` (no autograd).
void init_normal(at::Tensor& tensor, double std, at::Generator& gen);

class SelfAttentionImpl : public torch::nn::Module {
 public:
  SelfAttentionImpl(int64_t width, int64_t heads);
  // x [B, L, W]; mask additive, broadcastable to [B, heads, L, L], or undefined.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& mask);
  void reset(at::Generator& gen, double in_std, double out_std);

  at::Tensor in_proj_weight, in_proj_bias;
  torch::nn::Linear out_proj{nullptr};

 private:
  int64_t heads_;
};
TORCH_MODULE(SelfAttention);

class MlpImpl : public torch::nn::Module {
 public:
  explicit MlpImpl(int64_t width, Activation activation = Activation::quick_gelu);
  at::Tensor forward(const at::Tensor& x);
  void reset(at::Generator& gen, double fc_std, double proj_std);

  torch::nn::Linear c_fc{nullptr}, c_proj{nullptr};

 private:
  Activation activation_;
};
TORCH_MODULE(Mlp);

class ResidualBlockImpl : public torch::nn::Module {
 public:
  ResidualBlockImpl(int64_t width, int64_t heads, Activation activation);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& mask);

  torch::nn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
  SelfAttention attn{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(ResidualBlock);

class TransformerImpl : public torch::nn::Module {
 public:
  // Initialised as CLIP does: attention inputs N(0, W^-1/2), output projections
  // N(0, W^-1/2 (2 layers)^-1/2), MLP input N(0, (2W)^-1/2); biases zero, norms identity.
  TransformerImpl(int64_t width, int64_t layers, int64_t heads, Activation activation, at::Generator& gen);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& mask = {});

  void set_checkpointing(bool on) { checkpointing_ = on; }
  int64_t layers() const { return static_cast<int64_t>(blocks_.size()); }

  torch::nn::ModuleList resblocks{nullptr};

 private:
  std::vector<ResidualBlock> blocks_;
  bool checkpointing_ = false;
};
TORCH_MODULE(Transformer);

// An additive [L, L] mask with -inf above the diagonal (token i sees tokens <= i).
at::Tensor causal_mask(int64_t length, const at::TensorOptions& options);

}  // namespace harvest
