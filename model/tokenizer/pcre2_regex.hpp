// RAII over one compiled PCRE2 pattern in UTF + UCP mode (Unicode properties for \p{..}), JIT
// compiled when the platform supports it. Matching is const and thread-safe: match data is
// allocated per call.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace harvest::tokenizer {

class Pcre2Regex {
 public:
  // `flags` are extra PCRE2 compile options (e.g. PCRE2_CASELESS); throws Internal on a bad pattern.
  explicit Pcre2Regex(const std::string& pattern, uint32_t flags = 0);
  ~Pcre2Regex();
  Pcre2Regex(Pcre2Regex&&) noexcept;
  Pcre2Regex& operator=(Pcre2Regex&&) noexcept;
  Pcre2Regex(const Pcre2Regex&) = delete;
  Pcre2Regex& operator=(const Pcre2Regex&) = delete;

  // Every non-overlapping match, left to right (like Python's re.findall without groups), as
  // [begin, end) byte offsets. `text` must be valid UTF-8.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;

  // Whether the pattern matches at exactly `offset` (anchored there).
  bool matches_at(std::string_view text, size_t offset) const;

  // Replaces every match with `replacement` (a literal).
  std::string replace_all(std::string_view text, std::string_view replacement) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace harvest::tokenizer
