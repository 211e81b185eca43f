// Learns CLIP-format BPE merges from captions, with CLIP's own cleaning and pre-tokenisation, so
// a from-scratch run needs no outside vocabulary.
//
// Sizes count as CLIP counts them: vocab_size = 256 byte tokens + 256 byte+"</w>" tokens +
// merges + 2 special tokens (<|startoftext|>, <|endoftext|>); CLIP's 49408 = 512 + 48894 + 2.
// [MASK] is not part of it (the tokenizer appends it).
//
// Deterministic: each step merges the pair with the highest count over all words (a word
// counts once per occurrence in the captions); ties go to the smaller pair, comparing the left
// token's bytes, then the right token's. Pairs whose concatenation is already a token are never
// merged (each merge adds a new token, so the merge order replays exactly when encoding).
// Learning stops early when no pair occurs at least twice.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "model/tokenizer/bpe_vocabulary.hpp"

namespace harvest::tokenizer {

struct BpeLearnStats {
  size_t texts = 0;
  size_t words = 0;         // pre-tokens, with repetition
  size_t unique_words = 0;
  size_t merges = 0;
  bool stopped_early = false;  // ran out of pairs occurring at least twice
};

// Throws Usage unless vocab_size is in [514, 49408], naming the value.
void check_vocab_size(size_t vocab_size);

class BpeLearner {
 public:
  BpeLearner();
  ~BpeLearner();
  BpeLearner(const BpeLearner&) = delete;
  BpeLearner& operator=(const BpeLearner&) = delete;

  // Cleans and pre-tokenizes one caption and counts its words.
  void add_text(std::string_view text);

  // Learns up to vocab_size - 514 merges; vocab_size in [514, 49408] (the loader's default
  // reads at most CLIP's 48894 merges).
  std::vector<Merge> learn(size_t vocab_size);

  const BpeLearnStats& stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace harvest::tokenizer
