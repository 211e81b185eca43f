#include "model/tokenizer/bpe_vocabulary.hpp"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/json.hpp"
#include "core/error.hpp"
#include "model/tokenizer/byte_alphabet.hpp"
#include "model/tokenizer/gzip_file.hpp"
#include "model/tokenizer/utf8.hpp"

namespace harvest::tokenizer {

namespace {

bool valid_utf8(std::string_view s) {
  return utf8_encode(utf8_decode(s)) == s;
}

// The 512 base tokens in CLIP's id order.
std::vector<std::string> base_tokens() {
  const ByteAlphabet alphabet;
  std::vector<std::string> tokens;
  tokens.reserve(512);
  for (uint8_t b : alphabet.order()) tokens.push_back(alphabet.symbol(b));
  for (uint8_t b : alphabet.order()) tokens.push_back(alphabet.symbol(b) + kEndOfWord);
  return tokens;
}

}  // namespace

std::vector<Merge> parse_merges(const std::string& content, const std::string& source,
                                size_t max_merges) {
  HARVEST_REQUIRE(!content.empty(), Config, source,
                  ": empty file (expected a '", kVersionLine, "' line, then one merge per line)");
  std::vector<Merge> merges;
  std::set<Merge> seen;
  size_t begin = content.find('\n');  // line 1 is a comment, ignored as CLIP ignores it
  size_t line_no = 1;
  while (begin != std::string::npos && merges.size() < max_merges) {
    ++begin;
    ++line_no;
    size_t end = content.find('\n', begin);
    const size_t next = end;
    if (end == std::string::npos) end = content.size();
    std::string_view line(content.data() + begin, end - begin);
    begin = next;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) {
      // Only blank lines may follow a blank line: the file's end.
      HARVEST_REQUIRE(content.find_first_not_of("\r\n", end) == std::string::npos, Config, source,
                      ":", line_no, ": empty line inside the merge list");
      break;
    }
    const size_t space = line.find(' ');
    HARVEST_REQUIRE(space != std::string_view::npos && space > 0 && space + 1 < line.size() &&
                        line.find(' ', space + 1) == std::string_view::npos,
                    Config, source, ":", line_no, ": malformed merge '", line,
                    "' (expected two tokens separated by one space)");
    HARVEST_REQUIRE(valid_utf8(line), Config, source, ":", line_no, ": merge is not valid UTF-8");
    Merge merge{std::string(line.substr(0, space)), std::string(line.substr(space + 1))};
    HARVEST_REQUIRE(seen.insert(merge).second, Config, source, ":", line_no, ": duplicate merge '",
                    line, "'");
    merges.push_back(std::move(merge));
  }
  return merges;
}

BpeVocabulary clip_vocabulary(const std::vector<Merge>& merges, const std::string& source) {
  BpeVocabulary v;
  v.source = source;
  v.tokens = base_tokens();
  v.tokens.reserve(512 + merges.size() + 2);
  for (size_t i = 0; i < v.tokens.size(); ++i) v.ids[v.tokens[i]] = static_cast<int32_t>(i);
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    for (const std::string* part : {&a, &b})
      HARVEST_REQUIRE(v.ids.count(*part), Config, source, ":", rank + 2, ": merge '", a, " ", b,
                      "' uses '", *part, "', which is neither a byte nor made by an earlier merge");
    v.tokens.push_back(a + b);
    v.ids[v.tokens.back()] = static_cast<int32_t>(v.tokens.size() - 1);
  }
  v.merges = merges;
  v.tokens.push_back(kStartOfText);
  v.sot = static_cast<int32_t>(v.tokens.size() - 1);
  v.tokens.push_back(kEndOfText);
  v.eot = static_cast<int32_t>(v.tokens.size() - 1);
  v.ids[kStartOfText] = v.sot;
  v.ids[kEndOfText] = v.eot;
  return v;
}

BpeVocabulary load_clip_merges_file(const std::string& path, size_t max_merges) {
  const std::string content = read_maybe_gzip(path);
  return clip_vocabulary(parse_merges(content, path, max_merges), path);
}

BpeVocabulary load_hf_vocabulary(const std::string& vocab_json, const std::string& merges_txt) {
  HARVEST_REQUIRE(std::filesystem::is_regular_file(vocab_json), Runtime, vocab_json,
                  ": no such file (expected a Hugging Face vocab.json)");
  std::ifstream in(vocab_json, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  const nlohmann::json doc = parse_json_or_discarded(text.str());
  HARVEST_REQUIRE(!doc.is_discarded(), Config, vocab_json, ": not valid JSON (or nested deeper than ", kMaxJsonDepth,
                  " levels)");
  HARVEST_REQUIRE(doc.is_object() && !doc.empty(), Config, vocab_json,
                  ": expected a JSON object mapping tokens to ids");

  BpeVocabulary v;
  v.source = vocab_json + " + " + merges_txt;
  v.tokens.assign(doc.size(), std::string());
  std::vector<bool> filled(doc.size(), false);
  for (const auto& [token, id] : doc.items()) {
    HARVEST_REQUIRE(id.is_number_integer(), Config, vocab_json, ": token '", token,
                    "' has a non-integer id");
    const int64_t value = id.get<int64_t>();
    HARVEST_REQUIRE(value >= 0 && value < static_cast<int64_t>(doc.size()), Config, vocab_json,
                    ": token '", token, "' has id ", value, ", outside [0, ", doc.size(),
                    ") (ids must be dense)");
    HARVEST_REQUIRE(!filled[static_cast<size_t>(value)], Config, vocab_json, ": id ", value,
                    " is used by both '", v.tokens[static_cast<size_t>(value)], "' and '", token,
                    "'");
    filled[static_cast<size_t>(value)] = true;
    v.tokens[static_cast<size_t>(value)] = token;
    v.ids[token] = static_cast<int32_t>(value);
  }
  for (const auto& base : base_tokens())
    HARVEST_REQUIRE(v.ids.count(base), Config, vocab_json, ": byte token '", base,
                    "' is missing (a byte-level BPE vocabulary needs all 512 byte tokens)");
  for (const char* special : {kStartOfText, kEndOfText})
    HARVEST_REQUIRE(v.ids.count(special), Config, vocab_json, ": special token '", special,
                    "' is missing");
  v.sot = v.ids.at(kStartOfText);
  v.eot = v.ids.at(kEndOfText);

  const std::string content = read_maybe_gzip(merges_txt);
  v.merges = parse_merges(content, merges_txt, SIZE_MAX);
  for (size_t rank = 0; rank < v.merges.size(); ++rank) {
    const auto& [a, b] = v.merges[rank];
    for (const std::string& token : {a, b, a + b})
      HARVEST_REQUIRE(v.ids.count(token), Config, merges_txt, ":", rank + 2, ": merge '", a, " ",
                      b, "' needs token '", token, "', which ", vocab_json, " does not have");
  }
  return v;
}

BpeVocabulary load_vocabulary(const std::string& path, size_t max_merges) {
  namespace fs = std::filesystem;
  if (fs::is_directory(path))
    return load_hf_vocabulary((fs::path(path) / "vocab.json").string(),
                              (fs::path(path) / "merges.txt").string());
  if (fs::path(path).extension() == ".json")
    return load_hf_vocabulary(path, (fs::path(path).parent_path() / "merges.txt").string());
  return load_clip_merges_file(path, max_merges);
}

std::string format_merges(const std::vector<Merge>& merges, const std::string& comment) {
  std::string out = kVersionLine;
  if (!comment.empty()) out += " " + comment;
  out += "\n";
  for (const auto& [a, b] : merges) out += a + " " + b + "\n";
  return out;
}

}  // namespace harvest::tokenizer
