#include "model/tokenizer/text_cleaner.hpp"

#include <locale.h>
#include <wctype.h>

#include "core/error.hpp"
#include "model/tokenizer/html_unescape.hpp"
#include "model/tokenizer/pcre2_regex.hpp"
#include "model/tokenizer/utf8.hpp"

namespace harvest::tokenizer {

namespace {

// RAII over a locale_t: towlower_l with it never touches the process-wide locale.
class CLocale {
 public:
  CLocale() : loc_(newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr))) {
    HARVEST_REQUIRE(loc_ != static_cast<locale_t>(nullptr), Runtime,
                    "tokenizer: the C.UTF-8 locale is not available (glibc >= 2.35 provides it); "
                    "it supplies the Unicode lowercase mapping");
  }
  ~CLocale() { freelocale(loc_); }
  CLocale(const CLocale&) = delete;
  CLocale& operator=(const CLocale&) = delete;
  locale_t get() const { return loc_; }

 private:
  locale_t loc_;
};

}  // namespace

struct TextCleaner::Impl {
  CLocale locale;
  // Python's \s (str.isspace): White_Space plus the four C0 information separators.
  Pcre2Regex whitespace{R"([\p{White_Space}\x{1C}-\x{1F}]+)"};
  Pcre2Regex cased{R"(\p{Cased})"};
  Pcre2Regex case_ignorable{R"(\p{Case_Ignorable})"};

  bool has_property(const Pcre2Regex& re, char32_t cp) const {
    std::string s;
    utf8_append(s, cp);
    return re.matches_at(s, 0);
  }

  // Python's handle_capital_sigma: final form when a cased letter precedes (skipping
  // case-ignorables) and none follows (skipping case-ignorables).
  char32_t lower_sigma(const std::u32string& text, size_t i) const {
    size_t j = i;
    bool cased_before = false;
    while (j > 0) {
      --j;
      if (!has_property(case_ignorable, text[j])) {
        cased_before = has_property(cased, text[j]);
        break;
      }
    }
    if (!cased_before) return 0x3C3;
    for (size_t k = i + 1; k < text.size(); ++k) {
      if (!has_property(case_ignorable, text[k])) return has_property(cased, text[k]) ? 0x3C3 : 0x3C2;
    }
    return 0x3C2;
  }
};

TextCleaner::TextCleaner() : impl_(std::make_unique<Impl>()) {}
TextCleaner::~TextCleaner() = default;
TextCleaner::TextCleaner(TextCleaner&&) noexcept = default;
TextCleaner& TextCleaner::operator=(TextCleaner&&) noexcept = default;

std::string TextCleaner::collapse_whitespace(std::string_view utf8) const {
  std::string collapsed = impl_->whitespace.replace_all(utf8, " ");
  const size_t begin = collapsed.find_first_not_of(' ');
  if (begin == std::string::npos) return {};
  const size_t end = collapsed.find_last_not_of(' ');
  return collapsed.substr(begin, end - begin + 1);
}

std::string TextCleaner::lower(std::string_view utf8) const {
  const std::u32string text = utf8_decode(utf8);
  std::string out;
  out.reserve(utf8.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char32_t c = text[i];
    if (c < 0x80) {
      out.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c));
    } else if (c == 0x130) {  // LATIN CAPITAL LETTER I WITH DOT ABOVE -> i + COMBINING DOT ABOVE
      utf8_append(out, 'i');
      utf8_append(out, 0x307);
    } else if (c == 0x3A3) {
      utf8_append(out, impl_->lower_sigma(text, i));
    } else {
      utf8_append(out, static_cast<char32_t>(towlower_l(static_cast<wint_t>(c), impl_->locale.get())));
    }
  }
  return out;
}

std::string TextCleaner::clean(std::string_view text) const {
  const std::u32string unescaped = html_unescape(html_unescape(utf8_decode(text)));
  return lower(collapse_whitespace(utf8_encode(unescaped)));
}

}  // namespace harvest::tokenizer
