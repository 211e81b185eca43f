// CLIP's text normalisation, as its tokenizer applies it before pre-tokenisation:
//   html.unescape twice, strip, collapse every whitespace run to one space, strip, str.lower().
//
// Not applied: ftfy.fix_text (mojibake and other Unicode repairs). Text that ftfy would change
// (e.g. "Ã©" for "é", curly quotes are kept) tokenizes as it is written; for clean UTF-8
// captions ftfy is a no-op and ids equal CLIP's.
//
// Whitespace is Python's str.isspace set (Unicode White_Space plus U+001C..U+001F), matched with
// PCRE2's \p{White_Space}. Lowercasing is Python's str.lower(): the C.UTF-8 locale's towlower
// (glibc's Unicode tables), plus the one unconditional multi-character mapping (U+0130 ->
// "i" U+0307) and the Final_Sigma rule for U+03A3 (Cased / Case_Ignorable through PCRE2).
// Limit: both follow the Unicode version of the installed glibc and PCRE2 (Unicode 14 on
// Debian 12, the same as Python 3.11); characters assigned later are not lowercased.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace harvest::tokenizer {

class TextCleaner {
 public:
  TextCleaner();  // throws Runtime when the C.UTF-8 locale is missing
  ~TextCleaner();
  TextCleaner(TextCleaner&&) noexcept;
  TextCleaner& operator=(TextCleaner&&) noexcept;

  // UTF-8 in (invalid sequences become U+FFFD), cleaned UTF-8 out.
  std::string clean(std::string_view text) const;

  // The steps, exposed for tests.
  std::string collapse_whitespace(std::string_view utf8) const;  // also strips both ends
  std::string lower(std::string_view utf8) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace harvest::tokenizer
