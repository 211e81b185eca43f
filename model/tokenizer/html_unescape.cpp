#include "model/tokenizer/html_unescape.hpp"

#include <string>

namespace harvest::tokenizer {

namespace {

// HTML5 "numeric character reference end state": code points 0x80-0x9F are read as
// Windows-1252, whose defined characters replace them; the five undefined ones stay as they are.
char32_t windows_1252(char32_t cp) {
  static constexpr char32_t kHigh[32] = {
      0x20AC, 0x81,   0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
      0x2039, 0x0152, 0x8D,   0x017D, 0x8F,   0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
      0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D,   0x017E, 0x0178};
  return kHigh[cp - 0x80];
}

bool is_ascii_digit(char32_t c) { return c >= '0' && c <= '9'; }
bool is_ascii_hex(char32_t c) {
  return is_ascii_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
int hex_value(char32_t c) {
  if (is_ascii_digit(c)) return static_cast<int>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<int>(c - 'a' + 10);
  return static_cast<int>(c - 'A' + 10);
}

// What a numeric reference to `cp` decodes to (Python's html._replace_charref). `cp` is
// saturated at 0x110000 by the parser.
void append_numeric(std::u32string& out, char32_t cp) {
  if (cp == 0) {
    out.push_back(0xFFFD);
  } else if (cp == 0x0D) {
    out.push_back(0x0D);
  } else if (cp >= 0x80 && cp <= 0x9F) {
    out.push_back(windows_1252(cp));
  } else if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
    out.push_back(0xFFFD);
  } else if ((cp >= 0x01 && cp <= 0x08) || cp == 0x0B || (cp >= 0x0E && cp <= 0x1F) ||
             (cp >= 0x7F && cp <= 0x9F) || (cp >= 0xFDD0 && cp <= 0xFDEF) ||
             (cp & 0xFFFE) == 0xFFFE) {
    // Disallowed code points (controls, noncharacters) decode to nothing.
  } else {
    out.push_back(cp);
  }
}

bool ends_name(char32_t c) {
  return c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '<' || c == '&' || c == '#' ||
         c == ';';
}

// Looks up the first `len` characters of `name` (ASCII only: every entity name is ASCII).
const std::u32string* lookup_prefix(std::u32string_view name, size_t len) {
  std::string key;
  key.reserve(len);
  for (size_t i = 0; i < len; ++i) {
    if (name[i] >= 0x80) return nullptr;
    key.push_back(static_cast<char>(name[i]));
  }
  return html_named_entity(key);
}

}  // namespace

std::u32string html_unescape(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const char32_t c = text[i];
    if (c != '&') {
      out.push_back(c);
      ++i;
      continue;
    }
    size_t j = i + 1;
    if (j < n && text[j] == '#') {
      // &#[0-9]+;?  or  &#[xX][0-9a-fA-F]+;?
      size_t k = j + 1;
      const bool hex = k < n && (text[k] == 'x' || text[k] == 'X');
      size_t digits_begin = k;
      if (!(k < n && is_ascii_digit(text[k])) && hex) digits_begin = k + 1;
      const bool use_hex = digits_begin != k;
      size_t e = digits_begin;
      uint32_t cp = 0;
      while (e < n && (use_hex ? is_ascii_hex(text[e]) : is_ascii_digit(text[e]))) {
        const uint32_t digit = static_cast<uint32_t>(use_hex ? hex_value(text[e]) : text[e] - '0');
        cp = cp > 0x10FFFF ? 0x110000 : cp * (use_hex ? 16u : 10u) + digit;
        if (cp > 0x10FFFF) cp = 0x110000;
        ++e;
      }
      if (e == digits_begin) {  // no digits: not a reference, the '&' is literal
        out.push_back('&');
        ++i;
        continue;
      }
      if (e < n && text[e] == ';') ++e;
      append_numeric(out, cp);
      i = e;
      continue;
    }
    // Named: up to 32 characters that cannot end a name, then an optional ';'.
    size_t e = j;
    while (e < n && e - j < 32 && !ends_name(text[e])) ++e;
    if (e == j) {
      out.push_back('&');
      ++i;
      continue;
    }
    if (e < n && text[e] == ';') ++e;
    const std::u32string_view name = text.substr(j, e - j);
    if (const auto* value = lookup_prefix(name, name.size())) {
      out += *value;
    } else {
      // The longest known prefix (at least 2 characters) wins; the rest stays literal.
      bool found = false;
      for (size_t len = name.size() - 1; len >= 2 && len < name.size(); --len) {
        if (const auto* value = lookup_prefix(name, len)) {
          out += *value;
          out += name.substr(len);
          found = true;
          break;
        }
      }
      if (!found) {
        out.push_back('&');
        out += name;
      }
    }
    i = e;
  }
  return out;
}

}  // namespace harvest::tokenizer
