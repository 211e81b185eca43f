// TextEncoder: CLIP's text transformer. Token + position embedding (the first context_length
// rows of CLIP's 77), causal mask, ln_final, the EOT token's state @ text_projection.
// Parameter names follow CLIP's top-level text tree (token_embedding.weight,
// positional_embedding, transformer.resblocks.*, ln_final, text_projection) plus
// mask_embedding, the input vector of MLM's [MASK] (CLIP's vocabulary has no such token).
#pragma once

#include <torch/torch.h>

#include "model/options.hpp"
#include "model/transformer.hpp"

namespace harvest {

struct TextEncoding {
  at::Tensor embedding;  // [B, embed_dim] at the EOT token, not normalised
  at::Tensor tokens;     // [B, L, W] after ln_final
  at::Tensor eot;        // [B] int64 EOT positions
};

class TextEncoderImpl : public torch::nn::Module {
 public:
  TextEncoderImpl(const TextOptions& options, const VocabInfo& vocab, int64_t embed_dim, at::Generator& gen);

  // ids: int64 [B, L], L <= context_length, each row [SOT, ..., EOT, padding...].
  // masked: bool [B, L] or undefined; where true the input is mask_embedding instead of the id's.
  TextEncoding forward(const at::Tensor& ids, const at::Tensor& masked = {});

  // First EOT position per row; throws Usage when a row has none.
  at::Tensor eot_positions(const at::Tensor& ids) const;

  const TextOptions& options() const { return options_; }
  const VocabInfo& vocab() const { return vocab_; }

  torch::nn::Embedding token_embedding{nullptr};
  at::Tensor positional_embedding, text_projection, mask_embedding;
  Transformer transformer{nullptr};
  torch::nn::LayerNorm ln_final{nullptr};

 private:
  TextOptions options_;
  VocabInfo vocab_;
};
TORCH_MODULE(TextEncoder);

}  // namespace harvest
