#include "model/losses.hpp"

#include "core/error.hpp"

namespace harvest {

at::Tensor logit_scale_for_loss(const at::Tensor& log_scale, int world_size) {
  const at::Tensor scale = log_scale.exp();
  if (world_size == 1) return scale;
  // Value of `scale`, gradient of scale / world_size.
  const double w = static_cast<double>(world_size);
  return scale / w + scale.detach() * (1.0 - 1.0 / w);
}

at::Tensor video_text_contrastive_loss(const at::Tensor& video, const at::Tensor& text, const at::Tensor& scale,
                                       Collective& collective) {
  HARVEST_REQUIRE(video.dim() == 2 && text.sizes() == video.sizes(), Usage,
                  "contrastive loss: video and text embeddings must both be [B, D], got ", video.sizes(), " and ",
                  text.sizes());
  namespace F = torch::nn::functional;
  const auto unit = F::NormalizeFuncOptions().dim(1);
  const at::Tensor all_video = collective.all_gather_with_grad(F::normalize(video.to(torch::kFloat), unit));
  const at::Tensor all_text = collective.all_gather_with_grad(F::normalize(text.to(torch::kFloat), unit));
  const at::Tensor logits = scale.to(torch::kFloat) * at::matmul(all_video, all_text.t());
  const at::Tensor labels = torch::arange(logits.size(0), logits.options().dtype(torch::kLong));
  return 0.5 * (F::cross_entropy(logits, labels) + F::cross_entropy(logits.t(), labels));
}

at::Tensor masked_token_loss_sum(const at::Tensor& logits, const at::Tensor& targets) {
  namespace F = torch::nn::functional;
  return F::cross_entropy(logits.to(torch::kFloat), targets, F::CrossEntropyFuncOptions().reduction(torch::kSum));
}

}  // namespace harvest
