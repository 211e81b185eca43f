// TextMasker: masked-language-modelling inputs. Of the caption tokens strictly between SOT and
// the first EOT (never SOT, EOT or padding), each is selected with probability mask_ratio; a
// selected token becomes [MASK] with mask_token_prob, a random non-special id with
// random_token_prob, and stays as is otherwise. Seeded CPU generator; state is checkpointable.
#pragma once

#include <torch/torch.h>

#include "model/options.hpp"

namespace harvest {

struct MaskedText {
  at::Tensor ids;      // int64 [B, L]: input ids (random replacements applied)
  at::Tensor masked;   // bool [B, L]: positions whose input is the [MASK] embedding
  at::Tensor targets;  // int64 [B, L]: original id at selected positions, kIgnore elsewhere
  static constexpr int64_t kIgnore = -100;
};

class TextMasker {
 public:
  TextMasker(double mask_ratio, double mask_token_prob, double random_token_prob, const VocabInfo& vocab,
             uint64_t seed);

  MaskedText operator()(const at::Tensor& ids);

  void reseed(uint64_t seed);
  at::Tensor state() const;
  void set_state(const at::Tensor& state);

 private:
  double mask_ratio_, mask_token_prob_, random_token_prob_;
  VocabInfo vocab_;
  at::Generator gen_;
};

}  // namespace harvest
