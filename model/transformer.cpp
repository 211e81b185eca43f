#include "model/transformer.hpp"

#include <cmath>
#include <limits>

#include "core/error.hpp"
#include "model/cuda_autocast.hpp"

namespace harvest {

at::Tensor quick_gelu(const at::Tensor& x) { return x * torch::sigmoid(1.702 * x); }

Activation parse_activation(const std::string& name, const std::string& what) {
  if (name == "quick_gelu") return Activation::quick_gelu;
  if (name == "gelu") return Activation::gelu;
  fail(ErrorKind::Config, what, ": activation '", name.substr(0, 64), "' is not supported (quick_gelu, gelu)");
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask) {
  std::optional<at::Tensor> m;
  if (mask.defined()) m = mask.to(q.scalar_type());
  return at::scaled_dot_product_attention(q, k, v, m);
}

void init_normal(at::Tensor& tensor, double std, at::Generator& gen) {
  torch::NoGradGuard no_grad;
  tensor.normal_(0.0, std, gen);
}

namespace {
void zero(at::Tensor& tensor) {
  torch::NoGradGuard no_grad;
  tensor.zero_();
}
}  // namespace

SelfAttentionImpl::SelfAttentionImpl(int64_t width, int64_t heads) : heads_(heads) {
  in_proj_weight = register_parameter("in_proj_weight", torch::empty({3 * width, width}));
  in_proj_bias = register_parameter("in_proj_bias", torch::zeros({3 * width}));
  out_proj = register_module("out_proj", torch::nn::Linear(width, width));
}

void SelfAttentionImpl::reset(at::Generator& gen, double in_std, double out_std) {
  init_normal(in_proj_weight, in_std, gen);
  zero(in_proj_bias);
  init_normal(out_proj->weight, out_std, gen);
  zero(out_proj->bias);
}

at::Tensor SelfAttentionImpl::forward(const at::Tensor& x, const at::Tensor& mask) {
  const int64_t batch = x.size(0), length = x.size(1), width = x.size(2);
  // One matmul for q, k and v, then [3, B, heads, L, head_dim].
  const at::Tensor qkv = torch::nn::functional::linear(x, in_proj_weight, in_proj_bias)
                             .view({batch, length, 3, heads_, width / heads_})
                             .permute({2, 0, 3, 1, 4});
  const at::Tensor out = attention(qkv[0], qkv[1], qkv[2], mask);
  return out_proj(out.transpose(1, 2).reshape({batch, length, width}));
}

MlpImpl::MlpImpl(int64_t width, Activation activation) : activation_(activation) {
  c_fc = register_module("c_fc", torch::nn::Linear(width, 4 * width));
  c_proj = register_module("c_proj", torch::nn::Linear(4 * width, width));
}

void MlpImpl::reset(at::Generator& gen, double fc_std, double proj_std) {
  init_normal(c_fc->weight, fc_std, gen);
  zero(c_fc->bias);
  init_normal(c_proj->weight, proj_std, gen);
  zero(c_proj->bias);
}

at::Tensor MlpImpl::forward(const at::Tensor& x) {
  const at::Tensor h = c_fc(x);
  return c_proj(activation_ == Activation::gelu ? torch::gelu(h) : quick_gelu(h));
}

ResidualBlockImpl::ResidualBlockImpl(int64_t width, int64_t heads, Activation activation) {
  ln_1 = register_module("ln_1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width}).eps(1e-5)));
  attn = register_module("attn", SelfAttention(width, heads));
  ln_2 = register_module("ln_2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width}).eps(1e-5)));
  mlp = register_module("mlp", Mlp(width, activation));
}

at::Tensor ResidualBlockImpl::forward(const at::Tensor& x, const at::Tensor& mask) {
  const at::Tensor h = x + attn->forward(ln_1(x), mask);
  return h + mlp->forward(ln_2(h));
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Runs a block without keeping activations; backward re-runs it with autograd on and
// differentiates the recomputation. Blocks have no dropout, so recomputation is exact.
struct CheckpointedBlock : public torch::autograd::Function<CheckpointedBlock> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, at::TensorList params,
                               ResidualBlockImpl* block, const c10::optional<at::Tensor>& mask_arg) {
    const at::Tensor mask = mask_arg.has_value() ? *mask_arg : at::Tensor();
    // The block lives as long as the model; autograd only needs its address until backward.
    ctx->saved_data["block"] = static_cast<int64_t>(reinterpret_cast<intptr_t>(block));
    ctx->saved_data["autocast"] = cuda_autocast_enabled();
    ctx->saved_data["params"] = static_cast<int64_t>(params.size());
    ctx->saved_data["has_mask"] = mask.defined();
    ctx->save_for_backward({x});
    if (mask.defined()) ctx->saved_data["mask"] = mask;
    return {block->forward(x, mask)};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_output) {
    auto* block = reinterpret_cast<ResidualBlockImpl*>(static_cast<intptr_t>(ctx->saved_data["block"].toInt()));
    const at::Tensor x = ctx->get_saved_variables()[0];
    const at::Tensor mask = ctx->saved_data["has_mask"].toBool() ? ctx->saved_data["mask"].toTensor() : at::Tensor();
    const std::vector<at::Tensor> params = block->parameters();
    const auto param_count = static_cast<size_t>(ctx->saved_data["params"].toInt());

    at::Tensor input = x.detach().requires_grad_(true);
    at::Tensor output;
    {
      torch::AutoGradMode grad_on(true);
      CudaAutocast autocast(ctx->saved_data["autocast"].toBool());
      output = block->forward(input, mask);
    }
    std::vector<at::Tensor> wrt = {input};
    std::vector<size_t> slot = {0};
    for (size_t i = 0; i < param_count; ++i) {
      if (!params[i].requires_grad()) continue;
      wrt.push_back(params[i]);
      slot.push_back(i + 1);
    }
    const variable_list grads =
        torch::autograd::grad({output}, wrt, {grad_output[0]}, /*retain_graph=*/false,
                              /*create_graph=*/false, /*allow_unused=*/true);
    // One gradient per forward argument: x, each parameter, the block pointer, the mask.
    variable_list result(1 + param_count + 2);
    for (size_t i = 0; i < grads.size(); ++i) result[slot[i]] = grads[i];
    return result;
  }
};

}  // namespace

TransformerImpl::TransformerImpl(int64_t width, int64_t layers, int64_t heads, Activation activation,
                                 at::Generator& gen) {
  resblocks = register_module("resblocks", torch::nn::ModuleList());
  const double attn_std = std::pow(static_cast<double>(width), -0.5);
  const double proj_std = attn_std * std::pow(2.0 * static_cast<double>(layers), -0.5);
  const double fc_std = std::pow(2.0 * static_cast<double>(width), -0.5);
  for (int64_t i = 0; i < layers; ++i) {
    ResidualBlock block(width, heads, activation);
    block->attn->reset(gen, attn_std, proj_std);
    block->mlp->reset(gen, fc_std, proj_std);
    resblocks->push_back(block);
    blocks_.push_back(block);
  }
}

at::Tensor TransformerImpl::forward(const at::Tensor& x, const at::Tensor& mask) {
  at::Tensor h = x;
  for (ResidualBlock& block : blocks_) {
    bool needs_grad = h.requires_grad();
    std::vector<at::Tensor> params;
    if (checkpointing_ && torch::GradMode::is_enabled()) {
      params = block->parameters();
      for (const at::Tensor& p : params) needs_grad = needs_grad || p.requires_grad();
    }
    if (checkpointing_ && torch::GradMode::is_enabled() && needs_grad) {
      const c10::optional<at::Tensor> mask_arg =
          mask.defined() ? c10::optional<at::Tensor>(mask) : c10::nullopt;
      h = CheckpointedBlock::apply(h, at::TensorList(params), block.get(), mask_arg)[0];
    } else {
      h = block->forward(h, mask);
    }
  }
  return h;
}

at::Tensor causal_mask(int64_t length, const at::TensorOptions& options) {
  return torch::full({length, length}, -std::numeric_limits<float>::infinity(), options).triu(1);
}

}  // namespace harvest
