// Bad vocabularies and arguments fail with errors that name the file, the line or the value.
#include <zlib.h>

#include <catch2/catch.hpp>

#include "core/error.hpp"
#include "model/tokenizer/gzip_file.hpp"
#include "model/tokenizer/tokenizer.hpp"
#include "tests/tokenizer/support.hpp"

using harvest::Error;
using harvest::ErrorKind;
using harvest::tokenizer::Tokenizer;
using Catch::Matchers::Contains;
namespace t = harvest::test;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("a missing or corrupt vocabulary file is named in the error", "[tokenizer]") {
  t::ScratchDir dir("tok-bad-files");
  SECTION("missing") {
    const auto path = dir.file("absent.txt.gz");
    CHECK_THAT(error_of([&] { Tokenizer::load(path); }), Contains(path) && Contains("no such file"));
  }
  SECTION("gzip header followed by garbage") {
    const auto path = dir.file("corrupt.txt.gz");
    t::write_file(path, std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", 10) +
                            "this is not deflate data at all");
    CHECK_THAT(error_of([&] { Tokenizer::load(path); }), Contains(path) && Contains("gzip"));
  }
  SECTION("truncated gzip") {
    const auto good = t::read_file(t::kClipVocab);
    const auto path = dir.file("truncated.txt.gz");
    t::write_file(path, good.substr(0, good.size() / 2));
    CHECK_THAT(error_of([&] { Tokenizer::load(path); }), Contains(path));
  }
  SECTION("empty file") {
    const auto path = dir.file("empty.txt");
    t::write_file(path, "");
    CHECK_THAT(error_of([&] { Tokenizer::load(path); }), Contains(path) && Contains("empty"));
  }
  SECTION("missing merges.txt beside vocab.json") {
    const auto path = dir.file("vocab.json");
    t::write_file(path, "{\"a\": 0}");
    CHECK_THAT(error_of([&] { Tokenizer::load(path); }), Contains(path));
  }
}

TEST_CASE("a malformed merges line is named by file and line", "[tokenizer]") {
  t::ScratchDir dir("tok-bad-merges");
  const auto path = dir.file("merges.txt");
  auto load_error = [&](const std::string& content) {
    t::write_file(path, content);
    return error_of([&] { Tokenizer::load(path); });
  };
  CHECK_THAT(load_error("#version: 0.2\ni n\nt h e\n"),
             Contains(path + ":3") && Contains("malformed merge 't h e'"));
  CHECK_THAT(load_error("#version: 0.2\ni n\nth\n"), Contains(path + ":3"));
  CHECK_THAT(load_error("#version: 0.2\ni n\n t\n"), Contains(path + ":3"));
  CHECK_THAT(load_error("#version: 0.2\ni n\n\nt h\n"),
             Contains(path + ":3") && Contains("empty line"));
  CHECK_THAT(load_error("#version: 0.2\ni n\ni n\n"),
             Contains(path + ":3") && Contains("duplicate merge"));
  CHECK_THAT(load_error("#version: 0.2\ni n\nxyz w\n"),
             Contains(path + ":3") && Contains("'xyz'"));
  CHECK_THAT(load_error("#version: 0.2\ni n\n\xFF\xFE x\n"), Contains(path + ":3") && Contains("UTF-8"));
  // A trailing blank line (the final newline) and CRLF endings are fine.
  t::write_file(path, "#version: 0.2\r\ni n\r\nin g</w>\r\n\r\n");
  const auto tok = Tokenizer::load(path);
  CHECK(tok.vocab_size() == 512 + 2 + 2);
  CHECK(tok.encode("ing") == std::vector<int32_t>{tok.sot_id(), 513, tok.eot_id()});
}

TEST_CASE("a bad Hugging Face vocab.json is reported by token", "[tokenizer]") {
  t::ScratchDir dir("tok-bad-hf");
  const auto vocab = dir.file("vocab.json");
  t::write_file(dir.file("merges.txt"), "#version: 0.2\n");
  t::write_file(vocab, "{not json");
  CHECK_THAT(error_of([&] { Tokenizer::load(vocab); }), Contains(vocab) && Contains("not valid JSON"));
  t::write_file(vocab, "{\"a\": 0, \"b\": 5}");
  CHECK_THAT(error_of([&] { Tokenizer::load(vocab); }), Contains("'b' has id 5"));
  t::write_file(vocab, "{\"a\": 0, \"b\": 1}");
  CHECK_THAT(error_of([&] { Tokenizer::load(vocab); }), Contains(vocab) && Contains("byte token"));
}

TEST_CASE("bad arguments are usage errors naming the value", "[tokenizer]") {
  const auto tok = Tokenizer::load(t::kClipVocab);
  CHECK_THAT(error_of([&] { tok.encode("hello", 1); }), Contains("context length 1"));
  CHECK_THAT(error_of([&] { tok.decode({5, 49409}); }), Contains("49409"));
  CHECK_THAT(error_of([&] { tok.decode({-1}); }), Contains("-1"));
  try {
    tok.encode("x", 1);
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::Usage);
  }
}
