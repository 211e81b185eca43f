#include "model/tokenizer/bpe_learner.hpp"

#include <algorithm>
#include <array>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "core/error.hpp"
#include "model/tokenizer/byte_alphabet.hpp"
#include "model/tokenizer/pre_tokenizer.hpp"
#include "model/tokenizer/text_cleaner.hpp"

namespace harvest::tokenizer {

namespace {

uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}
int32_t left_of(uint64_t key) { return static_cast<int32_t>(key >> 32); }
int32_t right_of(uint64_t key) { return static_cast<int32_t>(key & 0xFFFFFFFFu); }

struct Word {
  std::vector<int32_t> symbols;
  int64_t count = 0;
};

struct Candidate {
  int64_t count;
  uint64_t pair;
};

}  // namespace

struct BpeLearner::Impl {
  TextCleaner cleaner;
  PreTokenizer pre_tokenizer;
  std::unordered_map<std::string, int64_t> word_counts;
  BpeLearnStats stats;
};

BpeLearner::BpeLearner() : impl_(std::make_unique<Impl>()) {}
BpeLearner::~BpeLearner() = default;

const BpeLearnStats& BpeLearner::stats() const { return impl_->stats; }

void BpeLearner::add_text(std::string_view text) {
  const std::string cleaned = impl_->cleaner.clean(text);
  for (auto& word : impl_->pre_tokenizer.words(cleaned)) {
    // The special tokens encode to their own ids whatever the merges are.
    if (word == kStartOfText || word == kEndOfText) continue;
    ++impl_->word_counts[word];
    ++impl_->stats.words;
  }
  ++impl_->stats.texts;
}

void check_vocab_size(size_t vocab_size) {
  constexpr size_t kBase = 512 + 2;
  HARVEST_REQUIRE(vocab_size >= kBase && vocab_size <= kBase + kClipMaxMerges, Usage,
                  "vocabulary size ", vocab_size, " outside [", kBase, ", ", kBase + kClipMaxMerges,
                  "] (256 bytes + 256 bytes</w> + merges + 2 special tokens; CLIP's is 49408)");
}

std::vector<Merge> BpeLearner::learn(size_t vocab_size) {
  constexpr size_t kBase = 512 + 2;
  check_vocab_size(vocab_size);
  const size_t target = vocab_size - kBase;
  const ByteAlphabet alphabet;

  std::vector<std::string> text;  // symbol id -> token string
  std::unordered_map<std::string, int32_t> id_of;
  auto add_symbol = [&](std::string s) {
    id_of.emplace(s, static_cast<int32_t>(text.size()));
    text.push_back(std::move(s));
    return static_cast<int32_t>(text.size() - 1);
  };
  std::array<int32_t, 256> byte_sym{}, byte_eow_sym{};
  for (int b = 0; b < 256; ++b) {
    byte_sym[b] = add_symbol(alphabet.symbol(static_cast<uint8_t>(b)));
    byte_eow_sym[b] = add_symbol(alphabet.symbol(static_cast<uint8_t>(b)) + kEndOfWord);
  }

  // Words in a fixed order (the result does not depend on it, but logs and memory layout do).
  std::vector<std::pair<std::string, int64_t>> sorted(impl_->word_counts.begin(),
                                                      impl_->word_counts.end());
  std::sort(sorted.begin(), sorted.end());
  impl_->stats.unique_words = sorted.size();
  std::vector<Word> words;
  words.reserve(sorted.size());
  for (const auto& [w, count] : sorted) {
    Word word;
    word.count = count;
    for (size_t i = 0; i < w.size(); ++i) {
      const auto b = static_cast<uint8_t>(w[i]);
      word.symbols.push_back(i + 1 == w.size() ? byte_eow_sym[b] : byte_sym[b]);
    }
    words.push_back(std::move(word));
  }

  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<int32_t>> pair_words;  // may list a word twice
  for (size_t w = 0; w < words.size(); ++w) {
    const auto& s = words[w].symbols;
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      const uint64_t key = pair_key(s[i], s[i + 1]);
      pair_count[key] += words[w].count;
      pair_words[key].push_back(static_cast<int32_t>(w));
    }
  }

  // Max-heap on count; among equal counts the smaller (left, right) token bytes come first.
  auto worse = [&text](const Candidate& x, const Candidate& y) {
    if (x.count != y.count) return x.count < y.count;
    const int c = text[left_of(x.pair)].compare(text[left_of(y.pair)]);
    if (c != 0) return c > 0;
    return text[right_of(x.pair)].compare(text[right_of(y.pair)]) > 0;
  };
  std::priority_queue<Candidate, std::vector<Candidate>, decltype(worse)> heap(worse);
  for (const auto& [key, count] : pair_count) heap.push({count, key});

  std::vector<Merge> merges;
  std::unordered_set<uint64_t> changed;
  std::vector<int32_t> visited_stamp(words.size(), -1);
  while (merges.size() < target) {
    if (heap.empty()) {
      impl_->stats.stopped_early = true;
      break;
    }
    const Candidate top = heap.top();
    heap.pop();
    const auto current = pair_count.find(top.pair);
    if (current == pair_count.end() || current->second != top.count) continue;  // stale entry
    if (top.count < 2) {
      impl_->stats.stopped_early = true;
      break;
    }
    const int32_t a = left_of(top.pair), b = right_of(top.pair);
    std::string joined = text[a] + text[b];
    if (id_of.count(joined)) continue;  // would duplicate a token: never merged
    const int32_t merged = add_symbol(std::move(joined));
    merges.emplace_back(text[a], text[b]);
    const int32_t stamp = static_cast<int32_t>(merges.size());

    changed.clear();
    const std::vector<int32_t> affected = std::move(pair_words[top.pair]);
    pair_words.erase(top.pair);
    for (int32_t w : affected) {
      if (visited_stamp[w] == stamp) continue;
      visited_stamp[w] = stamp;
      Word& word = words[w];
      auto& s = word.symbols;
      bool present = false;
      for (size_t i = 0; i + 1 < s.size() && !present; ++i) present = s[i] == a && s[i + 1] == b;
      if (!present) continue;
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        const uint64_t key = pair_key(s[i], s[i + 1]);
        pair_count[key] -= word.count;
        changed.insert(key);
      }
      std::vector<int32_t> out;
      out.reserve(s.size());
      for (size_t i = 0; i < s.size();) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          out.push_back(merged);
          i += 2;
        } else {
          out.push_back(s[i++]);
        }
      }
      s = std::move(out);
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        const uint64_t key = pair_key(s[i], s[i + 1]);
        pair_count[key] += word.count;
        changed.insert(key);
        if (s[i] == merged || s[i + 1] == merged) pair_words[key].push_back(w);
      }
    }
    for (uint64_t key : changed) {
      const auto it = pair_count.find(key);
      if (it->second <= 0) {
        pair_count.erase(it);
      } else {
        heap.push({it->second, key});
      }
    }
  }
  impl_->stats.merges = merges.size();
  return merges;
}

}  // namespace harvest::tokenizer
