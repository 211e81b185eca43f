#include "model/text_masker.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>

#include "core/error.hpp"

namespace harvest {

TextMasker::TextMasker(double mask_ratio, double mask_token_prob, double random_token_prob,
                       const VocabInfo& vocab, uint64_t seed)
    : mask_ratio_(mask_ratio),
      mask_token_prob_(mask_token_prob),
      random_token_prob_(random_token_prob),
      vocab_(vocab),
      gen_(at::make_generator<at::CPUGeneratorImpl>(seed)) {
  HARVEST_REQUIRE(mask_ratio >= 0 && mask_ratio < 1, Config, "model.text_mask_ratio: must be in [0, 1) (got ",
                  mask_ratio, ")");
  HARVEST_REQUIRE(mask_token_prob >= 0 && random_token_prob >= 0 && mask_token_prob + random_token_prob <= 1 + 1e-12,
                  Config, "model.mask_token_prob + model.random_token_prob: must be non-negative and sum to <= 1 (got ",
                  mask_token_prob, " + ", random_token_prob, ")");
  HARVEST_REQUIRE(vocab.size >= 3, Config, "vocabulary: needs at least 3 ids (got ", vocab.size, ")");
}

MaskedText TextMasker::operator()(const at::Tensor& ids_in) {
  HARVEST_REQUIRE(ids_in.dim() == 2 && ids_in.scalar_type() == torch::kLong, Usage,
                  "TextMasker: ids must be int64 [B, L], got ", ids_in.sizes(), " ", ids_in.scalar_type());
  // Random draws happen on the CPU so the sequence is the same whatever the device.
  const at::Tensor ids = ids_in.cpu();
  const int64_t batch = ids.size(0), length = ids.size(1);
  const at::Tensor is_eot = ids == vocab_.eot_id;
  HARVEST_REQUIRE(is_eot.any(1).all().item<bool>(), Usage, "TextMasker: every caption needs an EOT token (id ",
                  vocab_.eot_id, ")");
  const at::Tensor eot = is_eot.to(torch::kByte).argmax(1, /*keepdim=*/true);
  const at::Tensor position = torch::arange(length, ids.options()).unsqueeze(0);
  // Strictly between position 0 (SOT) and the EOT; everything after EOT is padding.
  const at::Tensor eligible = (position > 0) & (position < eot) & (ids != vocab_.sot_id);

  const auto f32 = torch::TensorOptions().dtype(torch::kFloat);
  const at::Tensor selected = (torch::rand({batch, length}, gen_, f32) < mask_ratio_) & eligible;
  const at::Tensor how = torch::rand({batch, length}, gen_, f32);
  const at::Tensor to_mask = selected & (how < mask_token_prob_);
  const at::Tensor to_random = selected & (how >= mask_token_prob_) & (how < mask_token_prob_ + random_token_prob_);

  // Uniform over the non-special ids: draw from size - 2 values and step over SOT and EOT.
  at::Tensor random_ids = torch::randint(vocab_.size - 2, {batch, length}, gen_, ids.options());
  const int64_t low = std::min(vocab_.sot_id, vocab_.eot_id), high = std::max(vocab_.sot_id, vocab_.eot_id);
  random_ids = random_ids + (random_ids >= low).to(torch::kLong);
  random_ids = random_ids + (random_ids >= high).to(torch::kLong);

  MaskedText out;
  out.ids = torch::where(to_random, random_ids, ids).to(ids_in.device());
  out.masked = to_mask.to(ids_in.device());
  out.targets = torch::where(selected, ids, torch::full_like(ids, MaskedText::kIgnore)).to(ids_in.device());
  return out;
}

void TextMasker::reseed(uint64_t seed) {
  std::lock_guard<std::mutex> lock(gen_.mutex());
  gen_.set_current_seed(seed);
}

at::Tensor TextMasker::state() const { return gen_.get_state(); }

void TextMasker::set_state(const at::Tensor& state) {
  std::lock_guard<std::mutex> lock(gen_.mutex());
  gen_.set_state(state);
}

}  // namespace harvest
