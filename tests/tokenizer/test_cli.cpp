// `harvest tokenize` and `harvest data vocab` as a user runs them.
#include <catch2/catch.hpp>

#include "model/tokenizer/tokenizer.hpp"
#include "tests/tokenizer/support.hpp"

using harvest::tokenizer::Tokenizer;
using Catch::Matchers::Contains;
using nlohmann::json;
namespace t = harvest::test;

namespace {
const std::string kExe = HARVEST_EXE;
}

TEST_CASE("harvest tokenize prints one JSON array of ids per text", "[tokenizer][cli]") {
  const auto tok = Tokenizer::load(t::kClipVocab);
  const auto r = t::run(kExe + " tokenize --vocab " + t::quote(t::kClipVocab) +
                        " 'Hello, World!' 'caf\u00e9 &amp; \U0001F600' ''");
  REQUIRE(r.exit_code == 0);
  std::istringstream lines(r.output);
  std::string line;
  std::vector<json> got;
  while (std::getline(lines, line)) got.push_back(json::parse(line));
  REQUIRE(got.size() == 3);
  CHECK(got[0] == json(std::vector<int32_t>{49406, 3306, 267, 1002, 256, 49407}));
  CHECK(got[1] == json(tok.encode("caf\u00e9 &amp; \U0001F600")));
  CHECK(got[2] == json(std::vector<int32_t>{49406, 49407}));

  const auto truncated = t::run(kExe + " tokenize --vocab " + t::quote(t::kClipVocab) +
                                " --context-length 4 'one two three four five'");
  REQUIRE(truncated.exit_code == 0);
  const auto ids = json::parse(truncated.output).get<std::vector<int32_t>>();
  CHECK(ids.size() == 4);
  CHECK(ids.front() == 49406);
  CHECK(ids.back() == 49407);

  const auto missing = t::run(kExe + " tokenize --vocab /nonexistent/vocab.txt.gz hi");
  CHECK(missing.exit_code == 1);
  CHECK_THAT(missing.output, Contains("/nonexistent/vocab.txt.gz"));
  const auto bad_length = t::run(kExe + " tokenize --vocab " + t::quote(t::kClipVocab) +
                                 " --context-length 1 hi");
  CHECK(bad_length.exit_code == 2);
  CHECK_THAT(bad_length.output, Contains("context length 1"));
}

TEST_CASE("harvest data vocab learns a deterministic vocabulary the tokenizer loads",
          "[tokenizer][cli]") {
  t::ScratchDir dir("tok-cli-vocab");
  const auto manifest = dir.file("train.jsonl");
  std::string rows;
  const char* colors[] = {"red", "green", "blue", "white"};
  const char* things[] = {"ball", "cube", "cone"};
  for (const char* c : colors)
    for (const char* th : things)
      rows += json{{"video", "v.mp4"}, {"caption", std::string("a ") + c + " " + th + " rolls away"}}
                  .dump() + "\n";
  rows += json{{"video", "w.mp4"}, {"captions", {"two captions here", "and another one"}}}.dump() + "\n";
  t::write_file(manifest, rows);

  const auto a = dir.file("a.txt.gz"), b = dir.file("b.txt.gz");
  const auto r1 = t::run(kExe + " data vocab --manifest " + t::quote(manifest) +
                         " --size 560 --out " + t::quote(a));
  REQUIRE(r1.exit_code == 0);
  const auto r2 = t::run(kExe + " data vocab --manifest " + t::quote(manifest) +
                         " --size 560 --out " + t::quote(b));
  REQUIRE(r2.exit_code == 0);
  CHECK(t::read_file(a) == t::read_file(b));
  const auto summary = json::parse(r1.output.substr(r1.output.rfind('{')));
  CHECK(summary["captions"] == 14);
  const auto tok = Tokenizer::load(a);
  CHECK(tok.vocab_size() == summary["vocab_size"].get<int32_t>());
  CHECK(tok.encode("a red ball rolls away").size() == 2 + 5);

  t::write_file(manifest, "{\"caption\": \"fine\"}\n{\"video\": \"no caption\"}\n");
  const auto bad = t::run(kExe + " data vocab --manifest " + t::quote(manifest) +
                          " --size 560 --out " + t::quote(dir.file("c.txt.gz")));
  CHECK(bad.exit_code == 2);
  CHECK_THAT(bad.output, Contains(manifest + ":2"));
  CHECK_FALSE(std::filesystem::exists(dir.file("c.txt.gz")));
  const auto bad_size = t::run(kExe + " data vocab --manifest " + t::quote(manifest) +
                               " --size 100 --out " + t::quote(dir.file("c.txt.gz")));
  CHECK(bad_size.exit_code == 2);
  CHECK_THAT(bad_size.output, Contains("100"));
}
