// A BPE vocabulary: id <-> token strings and the ranked merges, loaded from the two formats CLIP
// vocabularies come in, and validated so that encoding can never meet an unknown symbol.
//
//  * CLIP merges format (OpenAI's bpe_simple_vocab_16e6.txt.gz, Hugging Face's merges.txt, and
//    what `harvest data vocab` writes), gzip or plain: line 1 is a comment (ignored, as CLIP
//    does), then one merge "A B" per line. Ids follow CLIP's construction: the 256 byte tokens,
//    the 256 byte+"</w>" tokens, one token per merge, then <|startoftext|> and <|endoftext|>.
//    CLIP reads only the first 48894 merges of its 262144-merge file (vocabulary 49408); the
//    cap is an option (default: CLIP's).
//  * Hugging Face vocab.json (token -> id, dense ids) with merges.txt beside it: ids come from
//    vocab.json, ranks from merges.txt (all of its merges).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace harvest::tokenizer {

inline constexpr size_t kClipMaxMerges = 48894;  // 49408 - 256 - 256 - 2
inline constexpr const char* kStartOfText = "<|startoftext|>";
inline constexpr const char* kEndOfText = "<|endoftext|>";
inline constexpr const char* kEndOfWord = "</w>";
inline constexpr const char* kVersionLine = "#version: 0.2";

using Merge = std::pair<std::string, std::string>;

struct BpeVocabulary {
  std::string source;                            // file name(s), for messages
  std::vector<std::string> tokens;               // id -> token (byte-alphabet UTF-8)
  std::unordered_map<std::string, int32_t> ids;  // token -> id; a duplicate keeps its last id,
                                                 // as CLIP's encoder dict does
  std::vector<Merge> merges;                     // in rank order
  int32_t sot = -1;
  int32_t eot = -1;
};

// CLIP's construction from a merge list; throws Config naming `source` and the merge's line
// (line = rank + 2, the file's numbering) when a part is not a token made by an earlier merge.
BpeVocabulary clip_vocabulary(const std::vector<Merge>& merges, const std::string& source);

// Parses the CLIP merges format (first line skipped); errors name `source`:line.
std::vector<Merge> parse_merges(const std::string& content, const std::string& source,
                                size_t max_merges);

BpeVocabulary load_clip_merges_file(const std::string& path, size_t max_merges = kClipMaxMerges);
BpeVocabulary load_hf_vocabulary(const std::string& vocab_json, const std::string& merges_txt);

// By path: a directory holding vocab.json + merges.txt, a *.json file (merges.txt beside it), or
// any other file in CLIP's merges format.
BpeVocabulary load_vocabulary(const std::string& path, size_t max_merges = kClipMaxMerges);

// The merges format text for `merges` (what `harvest data vocab` gzips).
std::string format_merges(const std::vector<Merge>& merges, const std::string& comment);

}  // namespace harvest::tokenizer
