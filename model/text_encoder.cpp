#include "model/text_encoder.hpp"

#include <cmath>

#include "core/error.hpp"

namespace harvest {

TextEncoderImpl::TextEncoderImpl(const TextOptions& options, const VocabInfo& vocab, int64_t embed_dim,
                                 at::Generator& gen)
    : options_(options), vocab_(vocab) {
  const int64_t width = options.width;
  token_embedding = register_module("token_embedding", torch::nn::Embedding(vocab.size, width));
  positional_embedding = register_parameter("positional_embedding", torch::empty({options.max_positions, width}));
  transformer = register_module("transformer", Transformer(width, options.layers, options.heads,
                                                           parse_activation(options.activation, "model.activation"), gen));
  ln_final = register_module("ln_final", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width}).eps(1e-5)));
  text_projection = register_parameter("text_projection", torch::empty({width, embed_dim}));
  mask_embedding = register_parameter("mask_embedding", torch::empty({width}));

  init_normal(token_embedding->weight, 0.02, gen);
  init_normal(positional_embedding, 0.01, gen);
  init_normal(text_projection, std::pow(static_cast<double>(width), -0.5), gen);
  init_normal(mask_embedding, 0.02, gen);
}

at::Tensor TextEncoderImpl::eot_positions(const at::Tensor& ids) const {
  const at::Tensor is_eot = ids == vocab_.eot_id;
  HARVEST_REQUIRE(is_eot.any(1).all().item<bool>(), Usage, "TextEncoder: every caption needs an EOT token (id ",
                  vocab_.eot_id, "); rows without one: ", at::nonzero(~is_eot.any(1)).flatten().sizes()[0]);
  // argmax returns the first maximal index: the first EOT.
  return is_eot.to(torch::kByte).argmax(1);
}

TextEncoding TextEncoderImpl::forward(const at::Tensor& ids, const at::Tensor& masked) {
  HARVEST_REQUIRE(ids.dim() == 2 && ids.scalar_type() == torch::kLong && ids.size(1) >= 2 &&
                      ids.size(1) <= options_.context_length,
                  Usage, "TextEncoder: ids must be int64 [B, L] with 2 <= L <= context_length ",
                  options_.context_length, ", got ", ids.sizes(), " ", ids.scalar_type());
  const int64_t length = ids.size(1);
  at::Tensor x = token_embedding(ids);
  if (masked.defined()) x = torch::where(masked.unsqueeze(-1), mask_embedding.to(x.scalar_type()), x);
  x = x + positional_embedding.narrow(0, 0, length);
  x = ln_final(transformer(x, causal_mask(length, x.options())));

  TextEncoding out;
  out.eot = eot_positions(ids);
  const at::Tensor rows = torch::arange(ids.size(0), ids.options());
  out.embedding = at::matmul(x.index({rows, out.eot}), text_projection);
  out.tokens = x;
  return out;
}

}  // namespace harvest
