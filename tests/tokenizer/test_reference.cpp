// Ids, cleaning, pre-tokenisation and decoding equal an independent Python implementation of
// CLIP's tokenizer (reference_clip_tokenizer.py) on a few hundred varied strings.
#include <catch2/catch.hpp>

#include "model/tokenizer/tokenizer.hpp"
#include "tests/tokenizer/corpus.hpp"
#include "tests/tokenizer/support.hpp"

using harvest::tokenizer::Tokenizer;
using nlohmann::json;
namespace t = harvest::test;

namespace {

std::vector<std::string> full_corpus() {
  auto corpus = t::handpicked_corpus();
  for (auto& s : t::random_corpus(320, 20261128)) corpus.push_back(std::move(s));
  return corpus;
}

std::vector<json> as_json(const std::vector<std::string>& strings) {
  return std::vector<json>(strings.begin(), strings.end());
}

const Tokenizer& clip_tokenizer() {
  static const Tokenizer tok = Tokenizer::load(t::kClipVocab);
  return tok;
}

}  // namespace

TEST_CASE("ids equal the reference CLIP tokenizer for every corpus string", "[tokenizer]") {
  t::ScratchDir dir("tok-ref-encode");
  const auto corpus = full_corpus();
  REQUIRE(corpus.size() >= 380);
  const Tokenizer& tok = clip_tokenizer();
  for (size_t context : {size_t{0}, size_t{77}, size_t{32}}) {
    const auto expected = t::reference_apply(
        dir, "encode", as_json(corpus),
        "--vocab " + t::quote(t::kClipVocab) + " --context-length " + std::to_string(context));
    size_t mismatches = 0;
    for (size_t i = 0; i < corpus.size(); ++i) {
      const auto ids = tok.encode(corpus[i], context);
      if (json(ids) != expected[i]) {
        ++mismatches;
        INFO("text: " << json(corpus[i]).dump() << "\ncontext " << context);
        CHECK(json(ids).dump() == expected[i].dump());
      }
      if (context) CHECK(ids.size() <= context);
      CHECK(ids.back() == tok.eot_id());
    }
    CHECK(mismatches == 0);
  }
}

TEST_CASE("cleaning, words and decoding equal the reference", "[tokenizer]") {
  t::ScratchDir dir("tok-ref-steps");
  const auto corpus = full_corpus();
  const Tokenizer& tok = clip_tokenizer();

  SECTION("clean: html.unescape twice, whitespace collapse, lower()") {
    const auto expected = t::reference_apply(dir, "clean", as_json(corpus));
    for (size_t i = 0; i < corpus.size(); ++i) {
      INFO("text: " << json(corpus[i]).dump());
      CHECK(json(tok.clean(corpus[i])).dump() == expected[i].dump());
    }
  }
  SECTION("pre-tokenisation finds the same words") {
    const auto expected = t::reference_apply(dir, "words", as_json(corpus));
    for (size_t i = 0; i < corpus.size(); ++i) {
      INFO("text: " << json(corpus[i]).dump());
      CHECK(json(tok.pre_tokenize(tok.clean(corpus[i]))).dump() == expected[i].dump());
    }
  }
  SECTION("decode gives CLIP's text, including U+FFFD for split characters") {
    std::vector<json> id_lists;
    for (const auto& s : corpus) id_lists.push_back(tok.encode(s));
    // Byte tokens of a truncated 3-byte character and of a lone continuation byte.
    const auto euro = tok.encode("\u20ac");  // bytes E2 82 AC, one or more tokens
    id_lists.push_back(std::vector<int32_t>{tok.encode("a")[1], 0, 1});
    id_lists.push_back(std::vector<int32_t>{euro.begin(), euro.end() - 1});
    std::vector<int32_t> all_bytes;
    for (int32_t id = 0; id < 512; id += 7) all_bytes.push_back(id);
    id_lists.push_back(all_bytes);
    const auto expected = t::reference_apply(dir, "decode", id_lists,
                                             "--vocab " + t::quote(t::kClipVocab));
    for (size_t i = 0; i < id_lists.size(); ++i) {
      INFO("ids: " << id_lists[i].dump());
      CHECK(json(tok.decode(id_lists[i].get<std::vector<int32_t>>())).dump() ==
            expected[i].dump());
    }
  }
}

TEST_CASE("a Hugging Face vocab.json + merges.txt gives the same ids as CLIP's file", "[tokenizer]") {
  t::ScratchDir dir("tok-hf");
  t::run_reference("hf-export --vocab " + t::quote(t::kClipVocab) + " " + t::quote(dir.file("hf")));
  const Tokenizer& clip = clip_tokenizer();
  const Tokenizer from_dir = Tokenizer::load(dir.file("hf"));
  const Tokenizer from_json = Tokenizer::load(dir.file("hf/vocab.json"));
  CHECK(from_dir.vocab_size() == 49408);
  CHECK(from_dir.sot_id() == 49406);
  CHECK(from_dir.eot_id() == 49407);
  for (const auto& s : full_corpus()) {
    INFO("text: " << json(s).dump());
    const auto ids = clip.encode(s);
    CHECK(from_dir.encode(s) == ids);
    CHECK(from_json.encode(s) == ids);
  }
}
