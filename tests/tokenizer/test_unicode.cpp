// Character-level agreement with Python over every code point Python's Unicode database
// assigns: pre-tokenizer classes (PCRE2 vs `regex`), whitespace (str.isspace), lower() and the
// Final_Sigma context; HTML entity and numeric references against html.unescape.
#include <catch2/catch.hpp>
#include <sstream>

#include "model/tokenizer/html_unescape.hpp"
#include "model/tokenizer/pre_tokenizer.hpp"
#include "model/tokenizer/text_cleaner.hpp"
#include "model/tokenizer/utf8.hpp"
#include "tests/tokenizer/support.hpp"

using namespace harvest::tokenizer;
using nlohmann::json;
namespace t = harvest::test;

namespace {

std::string u8(char32_t cp) {
  std::string s;
  utf8_append(s, cp);
  return s;
}

// The class the pre-tokenizer gives a character, probed through its behaviour only:
// '-' skipped, 'N' a number (one word per character), 'L' joins a preceding letter, 'O' other.
char pre_token_class(const PreTokenizer& pre, char32_t cp) {
  const std::string c = u8(cp);
  if (pre.spans(c).empty()) return '-';
  if (pre.spans(c + c).size() == 2) return 'N';
  if (pre.spans("a" + c).size() == 1) return 'L';
  return 'O';
}

std::string lower_hex(const std::string& utf8) {
  std::string out;
  for (char32_t cp : utf8_decode(utf8)) {
    std::ostringstream s;
    s << std::hex << static_cast<uint32_t>(cp);
    out += (out.empty() ? "" : "+") + s.str();
  }
  return out;
}

}  // namespace

TEST_CASE("every assigned code point is classified, spaced and lowercased as Python does",
          "[tokenizer]") {
  t::ScratchDir dir("tok-unicode");
  const std::string table = dir.file("unicode.txt");
  t::run_reference("unicode-table " + t::quote(table));
  const PreTokenizer pre;
  const TextCleaner cleaner;
  std::istringstream in(t::read_file(table));
  std::string line;
  size_t rows = 0, class_diff = 0, space_diff = 0, lower_diff = 0, sigma_diff = 0;
  while (std::getline(in, line)) {
    std::istringstream row(line);
    std::string hex, cls, lower;
    int space = 0, sigma_after = 0, sigma_before = 0;
    row >> hex >> cls >> lower >> space >> sigma_after >> sigma_before;
    const auto cp = static_cast<char32_t>(std::stoul(hex, nullptr, 16));
    const std::string c = u8(cp);
    ++rows;
    INFO("U+" << hex);
    if (pre_token_class(pre, cp) != cls[0]) {
      ++class_diff;
      CHECK(std::string(1, pre_token_class(pre, cp)) == cls);
    }
    const bool is_space = cleaner.collapse_whitespace("a" + c + "a") == "a a";
    if (is_space != (space == 1)) {
      ++space_diff;
      CHECK(is_space == (space == 1));
    }
    if (lower_hex(cleaner.lower(c)) != lower) {
      ++lower_diff;
      CHECK(lower_hex(cleaner.lower(c)) == lower);
    }
    const bool after = cleaner.lower(c + "\u03a3") == cleaner.lower(c) + "\u03c2";
    const bool before = cleaner.lower("A\u03a3" + c).substr(1, 2) == "\u03c2";
    if (after != (sigma_after == 1) || before != (sigma_before == 1)) {
      ++sigma_diff;
      CHECK(after == (sigma_after == 1));
      CHECK(before == (sigma_before == 1));
    }
  }
  CHECK(rows > 280000);  // Unicode 14 assigns 282,000+ code points outside the surrogates
  CHECK(class_diff == 0);
  CHECK(space_diff == 0);
  CHECK(lower_diff == 0);
  CHECK(sigma_diff == 0);
}

TEST_CASE("HTML references decode as Python's html.unescape", "[tokenizer]") {
  t::ScratchDir dir("tok-entities");
  std::vector<std::string> inputs;
  SECTION("every supported name, with and without ';', followed by text") {
    const auto names = html_entity_names();
    CHECK(names.size() > 350);
    for (const auto& name : names) {
      inputs.push_back("&" + name);
      inputs.push_back("x&" + name + "y;z");
      inputs.push_back("&" + name + "&" + name);
    }
  }
  SECTION("numeric references across the special ranges") {
    std::vector<uint32_t> cps;
    for (uint32_t cp = 0; cp < 0x300; ++cp) cps.push_back(cp);
    for (uint32_t cp = 0xD7F0; cp < 0xE010; ++cp) cps.push_back(cp);
    for (uint32_t cp = 0xFDC0; cp < 0xFE00; ++cp) cps.push_back(cp);
    for (uint32_t cp = 0xFFF0; cp < 0x10010; ++cp) cps.push_back(cp);
    for (uint32_t plane = 1; plane <= 0x10; ++plane)
      for (uint32_t low : {0xFFFDu, 0xFFFEu, 0xFFFFu}) cps.push_back((plane << 16) | low);
    for (uint32_t cp : {0x110000u, 0x110001u, 0xFFFFFFu, 0x7FFFFFFFu}) cps.push_back(cp);
    for (uint32_t cp : cps) {
      std::ostringstream hex;
      hex << std::hex << cp;
      inputs.push_back("&#" + std::to_string(cp) + ";");
      inputs.push_back("&#x" + hex.str() + "a");
      inputs.push_back("&#X" + hex.str() + ";;");
    }
    inputs.push_back("&#99999999999999999999999;");
    inputs.push_back("&#x0000000000041;");
  }
  SECTION("malformed and partial references") {
    inputs = {"&", "&&", "& ", "&#", "&#;", "&#x", "&#xg;", "&#-1;", "&;", "&amp", "&ampamp;",
              "&amp;amp;", "&AMP", "&Amp;", "&notit;", "&notin", "&noti", "&eacutex", "&eacute",
              "&sup1;", "&sup1x", "&supe", "&supex", "&\u00e9;", "&amp\u00e9;", "&lt\u00e9",
              "&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;", "&lt;&gt&quot",
              "&amp\t&lt\n&gt\f&quot&#65", "&copy;&COPY;&copy&COPYx&Copy;"};
  }
  const auto expected = t::reference_apply(dir, "unescape", std::vector<json>(inputs.begin(), inputs.end()));
  for (size_t i = 0; i < inputs.size(); ++i) {
    INFO("input: " << json(inputs[i]).dump());
    CHECK(json(utf8_encode(html_unescape(utf8_decode(inputs[i])))).dump() == expected[i].dump());
  }
}

TEST_CASE("invalid UTF-8 becomes one U+FFFD per maximal ill-formed subsequence", "[tokenizer]") {
  const std::string fffd = "\xEF\xBF\xBD";
  CHECK(utf8_encode(utf8_decode("a\xFF" "b")) == "a" + fffd + "b");
  CHECK(utf8_encode(utf8_decode("\xE2\x82")) == fffd);               // truncated 3-byte char
  CHECK(utf8_encode(utf8_decode("\xE2\x82" "a")) == fffd + "a");
  CHECK(utf8_encode(utf8_decode("\xC0\xAF")) == fffd + fffd);        // overlong: two subparts
  CHECK(utf8_encode(utf8_decode("\xED\xA0\x80")) == fffd + fffd + fffd);  // surrogate
  CHECK(utf8_encode(utf8_decode("\xF4\x90\x80\x80")) == fffd + fffd + fffd + fffd);
  CHECK(utf8_encode(utf8_decode("\xF0\x9F\x98\x80")) == "\xF0\x9F\x98\x80");
  CHECK(utf8_decode("\xF0\x9F\x98\x80") == std::u32string(1, 0x1F600));
}
