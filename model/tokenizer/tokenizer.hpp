// CLIP's byte-level BPE tokenizer: the same ids as OpenAI's SimpleTokenizer for any text, from
// CLIP's merges file, a Hugging Face vocab.json + merges.txt, or a vocabulary learned by
// `harvest data vocab`.
//
//   encode(text) = [SOT] + bpe(pre_tokenize(clean(text))) + [EOT], truncated to the context
//   length with EOT kept as the last token (clip.tokenize(..., truncate=True)).
//
// As in CLIP, the literal strings "<|startoftext|>" and "<|endoftext|>" inside a text encode to
// the special ids. [MASK] for masked-language modelling: CLIP has none, so harvest appends one
// id after the vocabulary (mask_id() == vocab_size()); the token embedding needs
// embedding_rows() == vocab_size() + 1 rows, and importing CLIP adds that row. No text ever
// encodes to it. Pool the text embedding at the EOT position, not at argmax(id): the mask id is
// larger than EOT's.
//
// Thread-safe: encode/decode are const; the per-word BPE cache is guarded by a mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "model/tokenizer/bpe_vocabulary.hpp"

namespace harvest::tokenizer {

struct TokenizerOptions {
  size_t max_merges = kClipMaxMerges;  // CLIP-format files only: merges read from the file
  size_t cache_words = 1 << 18;        // cached words before the cache is cleared (bounded memory)
};

class Tokenizer {
 public:
  // See load_vocabulary() for the accepted files; errors name the file (and line).
  static Tokenizer load(const std::string& path, const TokenizerOptions& options = {});
  explicit Tokenizer(BpeVocabulary vocabulary, const TokenizerOptions& options = {});
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // SOT + tokens + EOT. context_length 0: no truncation; otherwise at least 2.
  std::vector<int32_t> encode(std::string_view text, size_t context_length = 0) const;

  // CLIP's decode: tokens concatenated, bytes restored (invalid UTF-8 -> U+FFFD), "</w>" -> " ".
  // Special tokens decode to their literal text. Throws Usage on an id outside [0, embedding_rows()).
  std::string decode(const std::vector<int32_t>& ids) const;

  // The pipeline's steps, for tests and vocabulary learning.
  std::string clean(std::string_view text) const;
  std::vector<std::string> pre_tokenize(std::string_view cleaned) const;
  std::vector<int32_t> bpe_word(std::string_view word) const;  // ids of one pre-token

  int32_t vocab_size() const;  // ids text can produce: bytes, merges, SOT, EOT (CLIP: 49408)
  int32_t sot_id() const;
  int32_t eot_id() const;
  int32_t mask_id() const;  // == vocab_size(), see above
  int32_t embedding_rows() const { return mask_id() + 1; }
  const std::string& source() const;
  const BpeVocabulary& vocabulary() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace harvest::tokenizer
