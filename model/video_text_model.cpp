#include "model/video_text_model.hpp"

#include <cmath>

#include <ATen/CPUGeneratorImpl.h>

#include "core/error.hpp"
#include "model/losses.hpp"
#include "model/cuda_autocast.hpp"

namespace harvest {
namespace {

// SplitMix64 finaliser: decorrelates (seed, rank, stream) into independent generator seeds.
uint64_t mix(uint64_t seed, uint64_t rank, uint64_t stream) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (rank + 1) + 0xBF58476D1CE4E5B9ULL * stream;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace

at::Tensor normalize_video(const at::Tensor& video, const PixelNorm& norm) {
  HARVEST_REQUIRE(video.dim() == 5 && video.size(4) == 3 && video.scalar_type() == torch::kByte, Usage,
                  "normalize_video: expects uint8 [B, T, H, W, 3], got ", video.sizes(), " ", video.scalar_type());
  const auto f32 = video.options().dtype(torch::kFloat);
  const at::Tensor mean = torch::tensor({norm.mean[0], norm.mean[1], norm.mean[2]}, f32).view({1, 1, 3, 1, 1});
  const at::Tensor std = torch::tensor({norm.std[0], norm.std[1], norm.std[2]}, f32).view({1, 1, 3, 1, 1});
  const at::Tensor x = video.permute({0, 1, 4, 2, 3}).to(torch::kFloat).div_(255.0);
  return ((x - mean) / std).contiguous();
}

VideoTextModelImpl::VideoTextModelImpl(const ModelOptions& options)
    : options_(options),
      dropper_(options.drop_ratio, mix(options.seed, 0, 1)),
      masker_(options.text_mask_ratio, options.mask_token_prob, options.random_token_prob, options.vocab,
              mix(options.seed, 0, 2)) {
  validate(options);
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(options.seed);
  visual = register_module("visual", VideoEncoder(options.vision, options.embed_dim, gen));
  text = register_module("text", TextEncoder(options.text, options.vocab, options.embed_dim, gen));
  fusion = register_module("fusion", FusionHead(options.text.width, options.vision.width, options.text.heads,
                                                options.fusion_layers, options.vocab.size, gen));
  logit_scale = register_parameter("logit_scale", torch::full({}, std::log(1.0 / options.temperature_init)));
  clamp_logit_scale();
  visual->transformer->set_checkpointing(options.grad_checkpointing);
  text->transformer->set_checkpointing(options.grad_checkpointing);
  set_text_trainable(!options.freeze_text);
}

void VideoTextModelImpl::seed_sampling(uint64_t seed, int rank) {
  dropper_.reseed(mix(seed, static_cast<uint64_t>(rank), 1));
  masker_.reseed(mix(seed, static_cast<uint64_t>(rank), 2));
}

void VideoTextModelImpl::set_text_trainable(bool trainable) {
  for (at::Tensor& p : text->parameters()) p.set_requires_grad(trainable);
  // [MASK]'s input vector is harvest's own, not CLIP's: frozen, MLM would train against a random
  // vector forever. It always trains (through the frozen tower's activations), as the fusion
  // head does.
  text->mask_embedding.set_requires_grad(true);
}

void VideoTextModelImpl::clamp_logit_scale() {
  torch::NoGradGuard no_grad;
  logit_scale.clamp_(0.0, std::log(kMaxLogitScale));
}

ParamGroups VideoTextModelImpl::param_groups() {
  ParamGroups groups;
  for (const auto& item : named_parameters()) {
    const at::Tensor& p = item.value();
    if (!p.requires_grad()) continue;
    const std::string& name = item.key();
    const bool embedding = name.find("embedding") != std::string::npos;
    if (p.dim() < 2 || embedding || name == "logit_scale") {
      groups.no_decay.push_back(p);
    } else {
      groups.decay.push_back(p);
    }
  }
  return groups;
}

void VideoTextModelImpl::set_drop_ratio(double drop_ratio) {
  dropper_.set_drop_ratio(drop_ratio);
  options_.drop_ratio = drop_ratio;
}

StepRandomness VideoTextModelImpl::draw_randomness(int64_t batch, int64_t frames, const at::Tensor& text_ids,
                                                   bool with_mlm) {
  StepRandomness r;
  if (!is_training()) return r;
  if (options_.drop_ratio > 0)
    r.keep = dropper_.draw(batch, frames * options_.vision.patches_per_frame(), text_ids.device());
  if (with_mlm && options_.text_mask_ratio > 0) r.masked = masker_(text_ids);
  return r;
}

LossParts VideoTextModelImpl::forward(const at::Tensor& video, const at::Tensor& text_ids, Collective& collective,
                                      const LossWeights& weights) {
  const at::Tensor pixels = normalize_video(video);
  const StepRandomness randomness = draw_randomness(video.size(0), video.size(1), text_ids, weights.mlm > 0);
  return forward_with(pixels, text_ids, collective, weights, randomness);
}

LossParts VideoTextModelImpl::forward_with(const at::Tensor& video, const at::Tensor& text_ids,
                                           Collective& collective, const LossWeights& weights,
                                           const StepRandomness& randomness) {
  HARVEST_REQUIRE(text_ids.dim() == 2 && text_ids.size(0) == video.size(0), Usage,
                  "VideoTextModel: text ids must be [B, L] with B = ", video.size(0), " (video batch), got ",
                  text_ids.sizes());
  CudaAutocast autocast(bf16_autocast_ && video.is_cuda());
  const int world = collective.world_size();
  const int64_t batch = text_ids.size(0);

  const VideoEncoding v = visual->forward(video, randomness.keep);

  // The contrastive path sees the unmasked text; the MLM path the masked one. Both go through
  // the text encoder in one call.
  const bool mlm = randomness.masked.has_value();
  TextEncoding t;
  if (mlm) {
    const at::Tensor ids = at::cat({text_ids, randomness.masked->ids}, 0);
    const at::Tensor flags = at::cat({torch::zeros_like(randomness.masked->masked), randomness.masked->masked}, 0);
    t = text->forward(ids, flags);
  } else {
    t = text->forward(text_ids);
  }

  LossParts parts;
  parts.video_tokens = v.tokens.size(1);
  const at::Tensor scale = logit_scale_for_loss(logit_scale, world);
  const at::Tensor vtc = video_text_contrastive_loss(v.embedding, t.embedding.narrow(0, 0, batch), scale, collective);
  parts.vtc = vtc.detach();
  parts.logit_scale = scale.detach();
  at::Tensor total = vtc * (weights.vtc * world);

  parts.mlm = torch::zeros({}, vtc.options());
  if (mlm) {
    const at::Tensor targets = randomness.masked->targets;
    const at::Tensor selected = targets != MaskedText::kIgnore;
    const at::Tensor fused = fusion->forward(t.tokens.narrow(0, batch, batch), t.eot.narrow(0, batch, batch), v.tokens);
    const at::Tensor logits = fusion->predict(fused.index({selected}), text->token_embedding->weight);
    const at::Tensor local_sum = masked_token_loss_sum(logits, targets.index({selected}));
    // One collective for the global count (normalises the loss) and the global sum (logging).
    at::Tensor sums = torch::stack({local_sum.detach(), selected.sum().to(torch::kFloat)});
    collective.all_reduce_sum(sums);
    parts.masked_tokens = static_cast<int64_t>(sums[1].item<double>());
    if (parts.masked_tokens > 0) {
      parts.mlm = sums[0] / sums[1];
      total = total + local_sum * (weights.mlm * world / static_cast<double>(parts.masked_tokens));
    }
  }
  parts.total = total;
  return parts;
}

}  // namespace harvest
