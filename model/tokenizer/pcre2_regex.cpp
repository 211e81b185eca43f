#include "model/tokenizer/pcre2_regex.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/error.hpp"

namespace harvest::tokenizer {

namespace {

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof(buffer));
  return reinterpret_cast<const char*>(buffer);
}

struct MatchData {
  explicit MatchData(const pcre2_code* code)
      : data(pcre2_match_data_create_from_pattern(code, nullptr)) {
    HARVEST_ASSERT(data != nullptr, "pcre2_match_data_create_from_pattern: out of memory");
  }
  ~MatchData() { pcre2_match_data_free(data); }
  MatchData(const MatchData&) = delete;
  MatchData& operator=(const MatchData&) = delete;
  pcre2_match_data* data;
};

}  // namespace

struct Pcre2Regex::Impl {
  pcre2_code* code = nullptr;
  std::string pattern;
  ~Impl() { pcre2_code_free(code); }

  // One match starting the search at `start`; returns the PCRE2 rc (> 0 on a match).
  int match(std::string_view text, size_t start, uint32_t options, MatchData& md) const {
    // PCRE2_NO_UTF_CHECK: callers hand in UTF-8 we produced ourselves (already validated).
    const int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), start,
                               options | PCRE2_NO_UTF_CHECK, md.data, nullptr);
    HARVEST_ASSERT(rc >= 0 || rc == PCRE2_ERROR_NOMATCH, "pcre2_match(", pattern,
                   ") failed: ", pcre2_message(rc));
    return rc;
  }
};

Pcre2Regex::Pcre2Regex(const std::string& pattern, uint32_t flags) : impl_(std::make_unique<Impl>()) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  impl_->pattern = pattern;
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), pattern.size(),
                              PCRE2_UTF | PCRE2_UCP | flags, &error, &offset, nullptr);
  HARVEST_ASSERT(impl_->code != nullptr, "pcre2_compile(", pattern, ") at offset ", offset, ": ",
                 pcre2_message(error));
  // JIT is an optimisation only: without it (PCRE2 built without JIT) the interpreter gives the
  // same matches.
  (void)pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE);
}

Pcre2Regex::~Pcre2Regex() = default;
Pcre2Regex::Pcre2Regex(Pcre2Regex&&) noexcept = default;
Pcre2Regex& Pcre2Regex::operator=(Pcre2Regex&&) noexcept = default;

std::vector<std::pair<size_t, size_t>> Pcre2Regex::find_all(std::string_view text) const {
  std::vector<std::pair<size_t, size_t>> out;
  MatchData md(impl_->code);
  size_t start = 0;
  while (start <= text.size()) {
    if (impl_->match(text, start, 0, md) <= 0) break;
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.data);
    const size_t begin = ov[0], end = ov[1];
    if (end == begin) {
      // An empty match (not produced by harvest's patterns) must still make progress: step one
      // UTF-8 character.
      start = end + 1;
      while (start < text.size() && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) ++start;
      continue;
    }
    out.emplace_back(begin, end);
    start = end;
  }
  return out;
}

bool Pcre2Regex::matches_at(std::string_view text, size_t offset) const {
  MatchData md(impl_->code);
  return impl_->match(text, offset, PCRE2_ANCHORED, md) > 0;
}

std::string Pcre2Regex::replace_all(std::string_view text, std::string_view replacement) const {
  std::string out;
  out.reserve(text.size());
  size_t copied = 0;
  for (const auto& [begin, end] : find_all(text)) {
    out.append(text.substr(copied, begin - copied));
    out.append(replacement);
    copied = end;
  }
  out.append(text.substr(copied));
  return out;
}

}  // namespace harvest::tokenizer
