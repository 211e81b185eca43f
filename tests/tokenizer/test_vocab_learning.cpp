// Learning a BPE vocabulary from captions: deterministic, loadable by the same tokenizer (and by
// the Python reference), round-trips, and compresses its training captions.
#include <catch2/catch.hpp>

#include "core/error.hpp"
#include "model/tokenizer/bpe_learner.hpp"
#include "model/tokenizer/caption_reader.hpp"
#include "model/tokenizer/gzip_file.hpp"
#include "model/tokenizer/tokenizer.hpp"
#include "tests/tokenizer/corpus.hpp"
#include "tests/tokenizer/support.hpp"

using namespace harvest::tokenizer;
using Catch::Matchers::Contains;
using nlohmann::json;
namespace t = harvest::test;

namespace {

// Demo-like captions: attribute combinations plus some of the multilingual corpus.
std::vector<std::string> training_captions() {
  const char* colors[] = {"red", "green", "blue", "yellow", "purple", "orange"};
  const char* shapes[] = {"circle", "square", "triangle", "star"};
  const char* motions[] = {"moving left", "moving right", "spinning", "bouncing", "growing"};
  std::vector<std::string> out;
  for (const char* c : colors)
    for (const char* s : shapes)
      for (const char* m : motions)
        out.push_back(std::string("A ") + c + " " + s + " is " + m + " on a dark background.");
  for (auto& s : t::random_corpus(80, 7)) out.push_back(std::move(s));
  return out;
}

std::vector<Merge> learn(const std::vector<std::string>& captions, size_t size,
                         BpeLearnStats* stats = nullptr) {
  BpeLearner learner;
  for (const auto& c : captions) learner.add_text(c);
  auto merges = learner.learn(size);
  if (stats) *stats = learner.stats();
  return merges;
}

}  // namespace

TEST_CASE("learned vocabularies are deterministic and independent of caption order",
          "[tokenizer]") {
  t::ScratchDir dir("tok-learn-det");
  auto captions = training_captions();
  const auto first = learn(captions, 1200);
  std::reverse(captions.begin(), captions.end());
  const auto reversed = learn(captions, 1200);
  CHECK(first == reversed);
  write_gzip_atomic(dir.file("a.txt.gz"), format_merges(first, "test"));
  write_gzip_atomic(dir.file("b.txt.gz"), format_merges(reversed, "test"));
  CHECK(t::read_file(dir.file("a.txt.gz")) == t::read_file(dir.file("b.txt.gz")));
  // Ties: equal counts go to the smaller (left, right) pair, so the first merges are the most
  // frequent pairs in a fixed order.
  BpeLearner tie;
  tie.add_text("ab cd");
  const auto merges = tie.learn(515);
  CHECK(merges.empty());  // every pair occurs once: nothing worth merging
  BpeLearner tie2;
  tie2.add_text("cd ab cd ab");
  CHECK(tie2.learn(515) == std::vector<Merge>{{"a", "b</w>"}});
}

TEST_CASE("a learned vocabulary loads, matches the reference, round-trips and compresses",
          "[tokenizer]") {
  t::ScratchDir dir("tok-learn-use");
  const auto captions = training_captions();
  BpeLearnStats stats;
  const auto merges = learn(captions, 800, &stats);
  REQUIRE(merges.size() == 800 - 514);
  CHECK(stats.texts == captions.size());
  const auto path = dir.file("vocab.txt.gz");
  write_gzip_atomic(path, format_merges(merges, "test"));
  const Tokenizer tok = Tokenizer::load(path);
  CHECK(tok.vocab_size() == 800);
  CHECK(tok.sot_id() == 798);
  CHECK(tok.eot_id() == 799);
  CHECK(tok.mask_id() == 800);
  CHECK(tok.embedding_rows() == 801);

  SECTION("the Python reference reads the file as CLIP's format and gives the same ids") {
    const auto expected = t::reference_apply(dir, "encode",
                                             std::vector<json>(captions.begin(), captions.end()),
                                             "--vocab " + t::quote(path));
    for (size_t i = 0; i < captions.size(); ++i) {
      INFO("caption: " << json(captions[i]).dump());
      CHECK(json(tok.encode(captions[i])).dump() == expected[i].dump());
    }
  }
  SECTION("decode(encode(text)) is the cleaned text, word by word") {
    for (const auto& caption : captions) {
      auto ids = tok.encode(caption);
      ids = std::vector<int32_t>(ids.begin() + 1, ids.end() - 1);
      std::string words;
      // Special tokens have no "</w>": CLIP decodes them without the trailing space.
      for (const auto& w : tok.pre_tokenize(tok.clean(caption)))
        words += w + (w == kStartOfText || w == kEndOfText ? "" : " ");
      INFO("caption: " << json(caption).dump());
      CHECK(tok.decode(ids) == words);
      // Without the word separators, exactly the cleaned text (minus spaces and what CLIP skips).
      std::string cleaned_compact, decoded_compact;
      for (char c : tok.clean(caption)) if (c != ' ') cleaned_compact += c;
      for (char c : tok.decode(ids)) if (c != ' ') decoded_compact += c;
      if (tok.clean(caption).find("\xCD\x85") == std::string::npos)  // U+0345 is dropped
        CHECK(decoded_compact == cleaned_compact);
    }
  }
  SECTION("training captions take fewer tokens than bytes") {
    size_t tokens = 0, bytes = 0;
    for (const auto& caption : captions) {
      tokens += tok.encode(caption).size() - 2;
      for (const auto& w : tok.pre_tokenize(tok.clean(caption))) bytes += w.size();
    }
    INFO("tokens " << tokens << ", bytes " << bytes);
    CHECK(tokens * 2 < bytes);  // the random multilingual captions are mostly one-off noise
    // The attribute captions are fully learned: each word is one token.
    const auto ids = tok.encode("A red circle is spinning on a dark background.");
    CHECK(ids.size() == 2 + 10);
  }
}

TEST_CASE("vocabulary sizes are CLIP's accounting and bounded", "[tokenizer]") {
  BpeLearner learner;
  learner.add_text("tiny tiny corpus corpus");
  CHECK_THROWS_WITH(learner.learn(513), Contains("513") && Contains("514"));
  CHECK_THROWS_WITH(learner.learn(49409), Contains("49409"));
  const auto merges = learner.learn(5000);
  CHECK(learner.stats().stopped_early);
  CHECK(merges.size() < 20);
  CHECK(learner.stats().unique_words == 2);
}

TEST_CASE("captions are read from JSON Lines and CSV manifests", "[tokenizer]") {
  t::ScratchDir dir("tok-captions");
  std::vector<std::string> got;
  auto collect = [&](std::string_view c) { got.emplace_back(c); };
  SECTION("JSON Lines: caption and captions") {
    const auto path = dir.file("m.jsonl");
    t::write_file(path,
                  "{\"video\": \"a.mp4\", \"caption\": \"first\"}\n\n"
                  "{\"video\": \"b.mp4\", \"captions\": [\"second\", \"third\"]}\n");
    CHECK(read_captions(path, collect) == 3);
    CHECK(got == std::vector<std::string>{"first", "second", "third"});
  }
  SECTION("CSV with quotes, escaped quotes and newlines") {
    const auto path = dir.file("m.csv");
    t::write_file(path, "video,caption,split\r\na.mp4,plain,train\r\n"
                        "b.mp4,\"with, comma and \"\"quotes\"\"\nand a newline\",train\n");
    CHECK(read_captions(path, collect) == 2);
    CHECK(got == std::vector<std::string>{"plain", "with, comma and \"quotes\"\nand a newline"});
  }
  SECTION("errors name the file and line") {
    const auto path = dir.file("bad.jsonl");
    t::write_file(path, "{\"caption\": \"ok\"}\n{\"video\": \"x\"}\n");
    CHECK_THROWS_WITH(read_captions(path, collect), Contains(path + ":2") && Contains("caption"));
    t::write_file(path, "{\"caption\": \"ok\"}\n{\"caption\": 5}\n");
    CHECK_THROWS_WITH(read_captions(path, collect), Contains(path + ":2"));
    t::write_file(path, "{\"caption\": \"ok\"}\n{broken\n");
    CHECK_THROWS_WITH(read_captions(path, collect), Contains(path + ":2") && Contains("JSON"));
    const auto csv = dir.file("bad.csv");
    t::write_file(csv, "video,text\na,b\n");
    CHECK_THROWS_WITH(read_captions(csv, collect), Contains(csv) && Contains("caption"));
    t::write_file(csv, "video,caption\na,b,c\n");
    CHECK_THROWS_WITH(read_captions(csv, collect), Contains(csv + ":2"));
    CHECK_THROWS_WITH(read_captions(dir.file("absent.jsonl"), collect), Contains("absent.jsonl"));
  }
}
