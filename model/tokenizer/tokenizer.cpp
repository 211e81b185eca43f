#include "model/tokenizer/tokenizer.hpp"

#include <algorithm>
#include <array>
#include <mutex>
#include <queue>
#include <unordered_map>

#include "core/error.hpp"
#include "model/tokenizer/byte_alphabet.hpp"
#include "model/tokenizer/pre_tokenizer.hpp"
#include "model/tokenizer/text_cleaner.hpp"
#include "model/tokenizer/utf8.hpp"

namespace harvest::tokenizer {

namespace {

constexpr const char* kMaskText = "<|mask|>";

uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

struct MergeRule {
  int32_t rank;
  int32_t merged;
};

}  // namespace

struct Tokenizer::Impl {
  BpeVocabulary vocab;
  TokenizerOptions options;
  TextCleaner cleaner;
  PreTokenizer pre_tokenizer;
  std::array<int32_t, 256> byte_id{};
  std::array<int32_t, 256> byte_eow_id{};
  std::unordered_map<uint64_t, MergeRule> rules;
  std::vector<std::string> token_bytes;  // id -> the raw bytes it stands for

  mutable std::mutex cache_mutex;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache;

  Impl(BpeVocabulary v, const TokenizerOptions& o) : vocab(std::move(v)), options(o) {
    const ByteAlphabet alphabet;
    for (int b = 0; b < 256; ++b) {
      byte_id[b] = vocab.ids.at(alphabet.symbol(static_cast<uint8_t>(b)));
      byte_eow_id[b] = vocab.ids.at(alphabet.symbol(static_cast<uint8_t>(b)) + kEndOfWord);
    }
    rules.reserve(vocab.merges.size());
    for (size_t rank = 0; rank < vocab.merges.size(); ++rank) {
      const auto& [a, b] = vocab.merges[rank];
      rules.emplace(pair_key(vocab.ids.at(a), vocab.ids.at(b)),
                    MergeRule{static_cast<int32_t>(rank), vocab.ids.at(a + b)});
    }
    token_bytes.reserve(vocab.tokens.size());
    for (const auto& token : vocab.tokens) {
      std::string bytes;
      for (char32_t cp : utf8_decode(token)) {
        const auto b = alphabet.byte_of(cp);
        HARVEST_REQUIRE(b.has_value(), Config, vocab.source, ": token '", token,
                        "' has a character outside the byte alphabet (not a byte-level BPE vocabulary)");
        bytes.push_back(static_cast<char>(*b));
      }
      token_bytes.push_back(std::move(bytes));
    }
  }

  // CLIP's bpe(): repeatedly merge every occurrence (left to right) of the lowest-ranked adjacent
  // pair. A heap of (rank, position) over a linked list of symbols makes it O(n log n) in the
  // word length instead of CLIP's O(n^2); each round takes all entries of the lowest rank in
  // position order, which is exactly CLIP's left-to-right pass.
  std::vector<int32_t> bpe(std::string_view word) const {
    const size_t n = word.size();
    if (n == 0) return {};
    std::vector<int32_t> sym(n);
    std::vector<int32_t> next(n), prev(n);
    std::vector<bool> alive(n, true);
    for (size_t i = 0; i < n; ++i) {
      const auto b = static_cast<uint8_t>(word[i]);
      sym[i] = i + 1 == n ? byte_eow_id[b] : byte_id[b];
      next[i] = i + 1 == n ? -1 : static_cast<int32_t>(i + 1);
      prev[i] = static_cast<int32_t>(i) - 1;
    }
    struct Entry {
      int32_t rank, pos, left, right;
      bool operator>(const Entry& o) const {
        return rank != o.rank ? rank > o.rank : pos > o.pos;
      }
    };
    std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap;
    auto push_pair = [&](int32_t pos) {
      if (pos < 0 || next[pos] < 0) return;
      const auto it = rules.find(pair_key(sym[pos], sym[next[pos]]));
      if (it != rules.end()) heap.push({it->second.rank, pos, sym[pos], sym[next[pos]]});
    };
    for (size_t i = 0; i + 1 < n; ++i) push_pair(static_cast<int32_t>(i));

    std::vector<Entry> round;
    std::vector<int32_t> merged_at;
    while (!heap.empty()) {
      const int32_t rank = heap.top().rank;
      round.clear();
      while (!heap.empty() && heap.top().rank == rank) {
        round.push_back(heap.top());
        heap.pop();
      }
      merged_at.clear();
      for (const Entry& e : round) {  // already in position order (heap order)
        const int32_t right = next[e.pos];
        if (!alive[e.pos] || sym[e.pos] != e.left || right < 0 || sym[right] != e.right) continue;
        sym[e.pos] = rules.at(pair_key(e.left, e.right)).merged;
        alive[right] = false;
        next[e.pos] = next[right];
        if (next[right] >= 0) prev[next[right]] = e.pos;
        merged_at.push_back(e.pos);
      }
      for (int32_t pos : merged_at) {
        push_pair(prev[pos]);
        push_pair(pos);
      }
    }
    std::vector<int32_t> out;
    for (int32_t i = 0; i >= 0; i = next[i]) out.push_back(sym[i]);
    return out;
  }

  std::vector<int32_t> cached_bpe(const std::string& word) const {
    if (word == kStartOfText) return {vocab.sot};
    if (word == kEndOfText) return {vocab.eot};
    {
      std::lock_guard<std::mutex> lock(cache_mutex);
      const auto it = cache.find(word);
      if (it != cache.end()) return it->second;
    }
    std::vector<int32_t> ids = bpe(word);
    std::lock_guard<std::mutex> lock(cache_mutex);
    if (cache.size() >= options.cache_words) cache.clear();
    cache.emplace(word, ids);
    return ids;
  }

  int32_t mask_id() const { return static_cast<int32_t>(vocab.tokens.size()); }
};

Tokenizer::Tokenizer(BpeVocabulary vocabulary, const TokenizerOptions& options)
    : impl_(std::make_unique<Impl>(std::move(vocabulary), options)) {}

Tokenizer Tokenizer::load(const std::string& path, const TokenizerOptions& options) {
  return Tokenizer(load_vocabulary(path, options.max_merges), options);
}

Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

std::string Tokenizer::clean(std::string_view text) const { return impl_->cleaner.clean(text); }

std::vector<std::string> Tokenizer::pre_tokenize(std::string_view cleaned) const {
  std::vector<std::string> words;
  for (const auto& [begin, end] : impl_->pre_tokenizer.spans(cleaned))
    words.emplace_back(cleaned.substr(begin, end - begin));
  return words;
}

std::vector<int32_t> Tokenizer::bpe_word(std::string_view word) const {
  return impl_->cached_bpe(std::string(word));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, size_t context_length) const {
  HARVEST_REQUIRE(context_length == 0 || context_length >= 2, Usage, "context length ",
                  context_length, " cannot hold <|startoftext|> and <|endoftext|> (need >= 2)");
  const std::string cleaned = clean(text);
  std::vector<int32_t> ids{impl_->vocab.sot};
  for (const auto& [begin, end] : impl_->pre_tokenizer.spans(cleaned)) {
    const auto word = impl_->cached_bpe(cleaned.substr(begin, end - begin));
    ids.insert(ids.end(), word.begin(), word.end());
    // Later words cannot change earlier tokens: stop once truncation is certain.
    if (context_length != 0 && ids.size() >= context_length) break;
  }
  ids.push_back(impl_->vocab.eot);
  if (context_length != 0 && ids.size() > context_length) {
    ids.resize(context_length);
    ids.back() = impl_->vocab.eot;
  }
  return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string bytes;
  for (int32_t id : ids) {
    HARVEST_REQUIRE(id >= 0 && id <= mask_id(), Usage, "decode: token id ", id, " is outside [0, ",
                    embedding_rows(), ") for ", impl_->vocab.source);
    bytes += id == mask_id() ? std::string(kMaskText) : impl_->token_bytes[static_cast<size_t>(id)];
  }
  std::string text = utf8_encode(utf8_decode(bytes));
  std::string out;
  out.reserve(text.size());
  const std::string_view eow(kEndOfWord);
  for (size_t i = 0; i < text.size();) {
    if (text.compare(i, eow.size(), eow) == 0) {
      out.push_back(' ');
      i += eow.size();
    } else {
      out.push_back(text[i++]);
    }
  }
  return out;
}

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(impl_->vocab.tokens.size()); }
int32_t Tokenizer::sot_id() const { return impl_->vocab.sot; }
int32_t Tokenizer::eot_id() const { return impl_->vocab.eot; }
int32_t Tokenizer::mask_id() const { return impl_->mask_id(); }
const std::string& Tokenizer::source() const { return impl_->vocab.source; }
const BpeVocabulary& Tokenizer::vocabulary() const { return impl_->vocab; }

}  // namespace harvest::tokenizer
