// JSON read from files and messages, with a nesting limit. nlohmann's parser is iterative, but
// dump() (used by error messages and logs) and some of its operations recurse once per level, so
// a few hundred thousand '[' in a manifest row, a safetensors header or a config.json overflowed
// the stack after a successful parse. Every document harvest reads is a few levels deep; deeper
// ones are refused while parsing, like any other malformed input.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace harvest {

constexpr int kMaxJsonDepth = 64;

namespace json_detail {
struct TooDeep {};
template <class Json>
typename Json::parser_callback_t depth_limit() {
  return [](int depth, typename Json::parse_event_t, Json&) {
    if (depth > kMaxJsonDepth) throw TooDeep{};
    return true;
  };
}
}  // namespace json_detail

// nlohmann::basic_json::parse(input, nullptr, false) with the nesting limit: a value that is
// malformed or nested deeper than kMaxJsonDepth comes back discarded (is_discarded()), and the
// caller names the file, line or record as it does for any other malformed input.
template <class Json = nlohmann::json, class Input>
Json parse_json_or_discarded(Input&& input) {
  try {
    return Json::parse(std::forward<Input>(input), json_detail::depth_limit<Json>(), false);
  } catch (const json_detail::TooDeep&) {
    return Json(Json::value_t::discarded);
  }
}

// True when `text` is well-formed UTF-8 (no overlong forms, surrogates or code points past
// U+10FFFF): what JSON output needs, checked where text enters so errors can name its line.
inline bool valid_utf8(const std::string& text) {
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(text[i]);
    size_t len = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    const uint32_t min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_for_len[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

// At most `max_chars` of a value's JSON text, for error messages ("..." when cut): a message
// never echoes a whole value back.
template <class Json>
std::string json_excerpt(const Json& value, std::size_t max_chars = 80) {
  std::string text = value.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (text.size() > max_chars) text = text.substr(0, max_chars) + "...";
  return text;
}

}  // namespace harvest
