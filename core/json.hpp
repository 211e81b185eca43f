// JSON read from files and messages, with a nesting limit. nlohmann's parser is iterative, but
// dump() (used by error messages and logs) and some of its operations recurse once per level, so
// a few hundred thousand '[' in a manifest row, a safetensors header or a config.json overflowed
// the stack after a successful parse. Every document harvest reads is a few levels deep; deeper
// ones are refused while parsing, like any other malformed input.
#pragma once

#include <nlohmann/json.hpp>

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

// The same for one iterator range (a header inside a larger buffer).
template <class Json = nlohmann::json, class It>
Json parse_json_or_discarded(It first, It last) {
  try {
    return Json::parse(first, last, json_detail::depth_limit<Json>(), false);
  } catch (const json_detail::TooDeep&) {
    return Json(Json::value_t::discarded);
  }
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
