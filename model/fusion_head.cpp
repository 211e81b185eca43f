#include "model/fusion_head.hpp"

#include <cmath>
#include <limits>


namespace harvest {
namespace {

torch::nn::LayerNorm layer_norm(int64_t width) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({width}).eps(1e-5));
}

void zero(at::Tensor& tensor) {
  torch::NoGradGuard no_grad;
  tensor.zero_();
}

}  // namespace

CrossAttentionImpl::CrossAttentionImpl(int64_t width, int64_t context_width, int64_t heads) : heads_(heads) {
  q_proj = register_module("q_proj", torch::nn::Linear(width, width));
  k_proj = register_module("k_proj", torch::nn::Linear(context_width, width));
  v_proj = register_module("v_proj", torch::nn::Linear(context_width, width));
  out_proj = register_module("out_proj", torch::nn::Linear(width, width));
}

void CrossAttentionImpl::reset(at::Generator& gen, double in_std, double out_std) {
  for (auto* linear : {&q_proj, &k_proj, &v_proj}) {
    init_normal((*linear)->weight, in_std, gen);
    zero((*linear)->bias);
  }
  init_normal(out_proj->weight, out_std, gen);
  zero(out_proj->bias);
}

at::Tensor CrossAttentionImpl::forward(const at::Tensor& x, const at::Tensor& context) {
  const int64_t batch = x.size(0), length = x.size(1), width = x.size(2), head_dim = width / heads_;
  auto heads = [&](const at::Tensor& t) { return t.view({batch, t.size(1), heads_, head_dim}).transpose(1, 2); };
  const at::Tensor out = attention(heads(q_proj(x)), heads(k_proj(context)), heads(v_proj(context)), {});
  return out_proj(out.transpose(1, 2).reshape({batch, length, width}));
}

FusionLayerImpl::FusionLayerImpl(int64_t width, int64_t video_width, int64_t heads) {
  ln_1 = register_module("ln_1", layer_norm(width));
  attn = register_module("attn", SelfAttention(width, heads));
  ln_2 = register_module("ln_2", layer_norm(width));
  cross_attn = register_module("cross_attn", CrossAttention(width, video_width, heads));
  ln_3 = register_module("ln_3", layer_norm(width));
  mlp = register_module("mlp", Mlp(width));
}

at::Tensor FusionLayerImpl::forward(const at::Tensor& x, const at::Tensor& padding_mask, const at::Tensor& video) {
  at::Tensor h = x + attn->forward(ln_1(x), padding_mask);
  h = h + cross_attn->forward(ln_2(h), video);
  return h + mlp->forward(ln_3(h));
}

FusionHeadImpl::FusionHeadImpl(int64_t width, int64_t video_width, int64_t heads, int64_t layer_count,
                               int64_t vocab_size, at::Generator& gen) {
  layers = register_module("layers", torch::nn::ModuleList());
  const double attn_std = std::pow(static_cast<double>(width), -0.5);
  const double proj_std = attn_std * std::pow(2.0 * static_cast<double>(layer_count), -0.5);
  const double fc_std = std::pow(2.0 * static_cast<double>(width), -0.5);
  for (int64_t i = 0; i < layer_count; ++i) {
    FusionLayer layer(width, video_width, heads);
    layer->attn->reset(gen, attn_std, proj_std);
    layer->cross_attn->reset(gen, attn_std, proj_std);
    layer->mlp->reset(gen, fc_std, proj_std);
    layers->push_back(layer);
    layers_.push_back(layer);
  }
  dense = register_module("dense", torch::nn::Linear(width, width));
  ln_head = register_module("ln_head", layer_norm(width));
  bias = register_parameter("bias", torch::zeros({vocab_size}));
  init_normal(dense->weight, attn_std, gen);
  zero(dense->bias);
}

at::Tensor FusionHeadImpl::forward(const at::Tensor& text, const at::Tensor& eot, const at::Tensor& video) {
  const int64_t batch = text.size(0), length = text.size(1);
  // Padding (after EOT) is invisible as a key: additive mask [B, 1, 1, L].
  const at::Tensor position = torch::arange(length, eot.options()).unsqueeze(0);
  const at::Tensor padding = position > eot.unsqueeze(1);
  const at::Tensor mask = torch::zeros({batch, 1, 1, length}, text.options())
                              .masked_fill(padding.view({batch, 1, 1, length}),
                                           -std::numeric_limits<float>::infinity());
  at::Tensor h = text;
  for (FusionLayer& layer : layers_) h = layer->forward(h, mask, video);
  return h;
}

at::Tensor FusionHeadImpl::predict(const at::Tensor& states, const at::Tensor& token_embedding) {
  const at::Tensor h = ln_head(quick_gelu(dense(states)));
  return at::matmul(h, token_embedding.t()) + bias;
}

}  // namespace harvest
