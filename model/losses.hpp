// The recipe's losses. Contract with the worker: every rank computes `total` on its local batch;
// averaging the gradients of `total` over ranks gives the gradient of
//   vtc_weight x VTC(global batch) + mlm_weight x MLM(all ranks' masked tokens)
// that one worker would compute on the whole global batch.
#pragma once

#include <torch/torch.h>

#include "model/collective.hpp"

namespace harvest {

// CLIP's temperature: the learnable parameter is log(1 / T); T is kept >= 0.01 by clamping the
// parameter in place after each optimizer step (VideoTextModelImpl::clamp_logit_scale), as
// upstream CLIP does. A clamp inside the forward would pass zero gradient at the bound, and
// CLIP's ln(100) is slightly above it in float32: the temperature would never learn.
constexpr double kMaxLogitScale = 100.0;

// exp(log_scale). Its gradient is divided by `world_size`: every rank
// sees the whole global loss, so without it the averaged temperature gradient would be
// world_size times too large (features only carry gradients for the local slice).
at::Tensor logit_scale_for_loss(const at::Tensor& log_scale, int world_size);

// Symmetric InfoNCE over the global batch. video/text: local [B, D] embeddings (normalised
// here, in float32); scale: the logit scale. Features are gathered from all ranks with
// gradients flowing into the local slice. Returns the scalar global-batch loss (identical on
// every rank).
at::Tensor video_text_contrastive_loss(const at::Tensor& video, const at::Tensor& text, const at::Tensor& scale,
                                       Collective& collective);

// Summed cross-entropy of logits [N, V] (any dtype, computed in float32) against targets [N].
at::Tensor masked_token_loss_sum(const at::Tensor& logits, const at::Tensor& targets);

}  // namespace harvest
