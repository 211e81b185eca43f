#include "model/tokenizer/pre_tokenizer.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace harvest::tokenizer {

namespace {

// The pattern in the semantics of Python's `regex` module, which CLIP uses: its \s is Unicode
// White_Space (PCRE2's \s would add U+180E), and U+0345 is left out of the "other" class
// because, under IGNORECASE, `regex` matches the negated class against the letter U+0345
// case-folds to (iota), so CLIP drops that character from the token stream. With these two
// adjustments the classes agree with `regex` on every code point (tests check all of them).
constexpr const char* kPattern =
    R"(<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|)"
    R"([^\p{White_Space}\p{L}\p{N}\x{345}]+)";

}  // namespace

PreTokenizer::PreTokenizer() : pattern_(kPattern, PCRE2_CASELESS) {}

std::vector<std::pair<size_t, size_t>> PreTokenizer::spans(std::string_view cleaned) const {
  return pattern_.find_all(cleaned);
}

std::vector<std::string> PreTokenizer::words(std::string_view cleaned) const {
  std::vector<std::string> out;
  for (const auto& [begin, end] : spans(cleaned)) out.emplace_back(cleaned.substr(begin, end - begin));
  return out;
}

}  // namespace harvest::tokenizer
