// CLIP's pre-tokenisation: splits cleaned text into the words BPE runs on, with CLIP's pattern
//   <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
// through PCRE2 (UTF, Unicode properties, case-insensitive as CLIP compiles it).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "model/tokenizer/pcre2_regex.hpp"

namespace harvest::tokenizer {

class PreTokenizer {
 public:
  PreTokenizer();
  // Byte ranges [begin, end) of the words of `cleaned` (valid UTF-8, from TextCleaner).
  std::vector<std::pair<size_t, size_t>> spans(std::string_view cleaned) const;
  std::vector<std::string> words(std::string_view cleaned) const;

 private:
  Pcre2Regex pattern_;
};

}  // namespace harvest::tokenizer
