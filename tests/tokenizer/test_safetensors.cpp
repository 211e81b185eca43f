// The safetensors reader: values equal PyTorch's for every dtype, and every malformed file is
// rejected with an error naming the file and the tensor.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>

#include "core/error.hpp"
#include "model/safetensors/safetensors.hpp"
#include "tests/tokenizer/support.hpp"

using namespace harvest::safetensors;
using Catch::Matchers::Contains;
using nlohmann::json;
namespace t = harvest::test;

namespace {

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Writes 8-byte length + header text + `data` bytes.
std::string write_raw(const t::ScratchDir& dir, const std::string& name, const std::string& header,
                      const std::string& data) {
  std::string bytes(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  const auto path = dir.file(name);
  t::write_file(path, bytes + header + data);
  return path;
}

std::string error_of(const std::string& path) {
  try {
    SafetensorsFile::open(path);
  } catch (const harvest::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("tensors of every dtype convert to the float32 values PyTorch gives", "[safetensors]") {
  t::ScratchDir dir("st-values");
  const auto file = dir.file("model.safetensors"), expected_path = dir.file("expected.json");
  const auto r = t::run(t::kPython + " " + t::quote(HARVEST_SOURCE_DIR "/tests/tokenizer/make_safetensors.py") +
                        " " + t::quote(file) + " " + t::quote(expected_path));
  REQUIRE(r.exit_code == 0);
  const auto expected = json::parse(t::read_file(expected_path));
  const auto st = SafetensorsFile::open(file);
  CHECK(st.metadata().at("format") == "pt");
  CHECK(st.tensors().size() == expected.size());
  for (const auto& [name, want] : expected.items()) {
    INFO("tensor " << name);
    REQUIRE(st.contains(name));
    const auto& info = st.info(name);
    CHECK(to_string(info.dtype) == want["dtype"].get<std::string>());
    CHECK(info.shape == want["shape"].get<std::vector<int64_t>>());
    const auto values = st.to_float32(name);
    const auto bits = want["bits"].get<std::vector<std::string>>();
    REQUIRE(values.size() == bits.size());
    CHECK(static_cast<int64_t>(values.size()) == info.numel());
    for (size_t i = 0; i < bits.size(); ++i) {
      uint8_t b[4];
      for (int k = 0; k < 4; ++k) b[k] = static_cast<uint8_t>(std::stoul(bits[i].substr(2 * k, 2), nullptr, 16));
      uint32_t want_bits;
      std::memcpy(&want_bits, b, 4);
      INFO("element " << i);
      CHECK(bits_of(values[i]) == want_bits);
    }
  }
  CHECK(st.tensors().front().name <= st.tensors().back().name);  // name order
}

TEST_CASE("half, bfloat16 and float8 conversions", "[safetensors]") {
  CHECK(half_to_float(0x3C00) == 1.0f);
  CHECK(half_to_float(0xC000) == -2.0f);
  CHECK(half_to_float(0x7BFF) == 65504.0f);
  CHECK(half_to_float(0x0001) == std::ldexp(1.0f, -24));  // smallest subnormal
  CHECK(std::isinf(half_to_float(0x7C00)));
  CHECK(std::isnan(half_to_float(0x7E00)));
  CHECK(std::signbit(half_to_float(0x8000)));
  CHECK(bfloat16_to_float(0x3F80) == 1.0f);
  CHECK(bfloat16_to_float(0xC0A0) == -5.0f);
  // E4M3FN: bias 7, max 448, S.1111.111 is NaN, no infinity.
  CHECK(float8_e4m3_to_float(0x38) == 1.0f);
  CHECK(float8_e4m3_to_float(0x7E) == 448.0f);
  CHECK(float8_e4m3_to_float(0xFE) == -448.0f);
  CHECK(float8_e4m3_to_float(0x01) == std::ldexp(1.0f, -9));
  CHECK(float8_e4m3_to_float(0x78) == 256.0f);
  CHECK(std::isnan(float8_e4m3_to_float(0x7F)));
  // E5M2: bias 15, max 57344, IEEE infinities and NaNs.
  CHECK(float8_e5m2_to_float(0x3C) == 1.0f);
  CHECK(float8_e5m2_to_float(0x7B) == 57344.0f);
  CHECK(float8_e5m2_to_float(0x01) == std::ldexp(1.0f, -16));
  CHECK(std::isinf(float8_e5m2_to_float(0x7C)));
  CHECK(std::isnan(float8_e5m2_to_float(0x7F)));
}

TEST_CASE("a header nested a few hundred thousand levels deep is refused, not a stack overflow", "[safetensors]") {
  const t::ScratchDir dir("safetensors-deep");
  const std::string deep = std::string(300000, '[') + std::string(300000, ']');
  for (const char* field : {"shape", "data_offsets"}) {
    INFO(field);
    const std::string header = std::string("{\"w\": {\"dtype\": \"F32\", \"") + field + "\": " + deep + "}}";
    const std::string message = error_of(write_raw(dir, std::string(field) + ".st", header, ""));
    CHECK_THAT(message, Contains(std::string(field) + ".st") && Contains("deeper than 64 levels"));
    CHECK(message.size() < 1000);  // the value is never echoed back
  }
}

TEST_CASE("malformed safetensors files are rejected naming the file and tensor", "[safetensors]") {
  t::ScratchDir dir("st-bad");
  const std::string f32x2(8, '\0');
  auto header = [](const std::string& tensors) { return "{" + tensors + "}"; };
  auto tensor = [](const std::string& name, const std::string& dtype, const std::string& shape,
                   size_t begin, size_t end) {
    return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
           ",\"data_offsets\":[" + std::to_string(begin) + "," + std::to_string(end) + "]}";
  };

  SECTION("a valid minimal file opens") {
    const auto p = write_raw(dir, "ok.st", header(tensor("w", "F32", "[2]", 0, 8)), f32x2);
    const auto st = SafetensorsFile::open(p);
    CHECK(st.to_float32("w") == std::vector<float>{0.0f, 0.0f});
    CHECK_THROWS_WITH(st.info("absent"), Contains(p) && Contains("'absent'"));
  }
  SECTION("file and header sizes") {
    const auto tiny = dir.file("tiny.st");
    t::write_file(tiny, "abc");
    CHECK_THAT(error_of(tiny), Contains(tiny) && Contains("too small"));
    const auto missing = dir.file("missing.st");
    CHECK_THAT(error_of(missing), Contains(missing));
    std::string huge(8, '\0');
    huge[7] = 0x01;  // 2^56 bytes of header
    const auto big = dir.file("big.st");
    t::write_file(big, huge + "{}");
    CHECK_THAT(error_of(big), Contains(big) && Contains("exceeds the limit"));
    std::string past(8, '\0');
    past[0] = 100;
    const auto p = dir.file("past.st");
    t::write_file(p, past + "{}");
    CHECK_THAT(error_of(p), Contains(p) && Contains("past the end"));
  }
  SECTION("header JSON") {
    CHECK_THAT(error_of(write_raw(dir, "a.st", "{\"w\":", "")), Contains("a.st") && Contains("JSON"));
    CHECK_THAT(error_of(write_raw(dir, "b.st", "[1, 2]", "")), Contains("b.st") && Contains("JSON object"));
    CHECK_THAT(error_of(write_raw(dir, "c.st",
                                  header(tensor("w", "F32", "[1]", 0, 4) + "," +
                                         tensor("w", "F32", "[1]", 4, 8)),
                                  f32x2)),
               Contains("c.st") && Contains("'w' appears twice"));
    CHECK_THAT(error_of(write_raw(dir, "d.st", "{\"__metadata__\":{\"k\":1}}", "")),
               Contains("d.st") && Contains("'k'"));
  }
  SECTION("tensor entries") {
    auto err = [&](const std::string& name, const std::string& body, const std::string& data) {
      return error_of(write_raw(dir, name, body, data));
    };
    CHECK_THAT(err("e1.st", header(tensor("w.x", "F31", "[2]", 0, 8)), f32x2),
               Contains("e1.st") && Contains("'w.x'") && Contains("unknown dtype \"F31\""));
    CHECK_THAT(err("e2.st", header(tensor("w", "F32", "[-2]", 0, 8)), f32x2),
               Contains("'w'") && Contains("non-negative"));
    CHECK_THAT(err("e3.st", header(tensor("w", "F32", "[2]", 8, 0)), f32x2),
               Contains("'w'") && Contains("end before"));
    CHECK_THAT(err("e4.st", header(tensor("w", "F32", "[2]", 0, 12)), f32x2),
               Contains("'w'") && Contains("past the data buffer"));
    CHECK_THAT(err("e5.st", header(tensor("w", "F32", "[3]", 0, 8)), f32x2),
               Contains("e5.st") && Contains("'w'") && Contains("12 bytes") && Contains("span 8"));
    CHECK_THAT(err("e6.st", header(tensor("w", "F16", "[2,2]", 0, 8)), f32x2), Contains("(no error)"));
    CHECK_THAT(err("e7.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", f32x2),
               Contains("'w'") && Contains("unknown field \"x\""));
    CHECK_THAT(err("e8.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", f32x2),
               Contains("'w'") && Contains("data_offsets"));
    CHECK_THAT(err("e9.st", header(tensor("w", "F32", "[4294967296,4294967296,4294967296]", 0, 8)), f32x2),
               Contains("'w'") && Contains("too large"));
  }
  SECTION("overlaps, holes and uncovered bytes") {
    const std::string data(16, '\0');
    CHECK_THAT(error_of(write_raw(dir, "o.st",
                                  header(tensor("a", "F32", "[2]", 0, 8) + "," +
                                         tensor("b", "F32", "[2]", 4, 12) + "," +
                                         tensor("c", "F32", "[1]", 12, 16)),
                                  data)),
               Contains("o.st") && Contains("'b'") && Contains("overlap tensor 'a'"));
    CHECK_THAT(error_of(write_raw(dir, "h.st",
                                  header(tensor("a", "F32", "[2]", 0, 8) + "," +
                                         tensor("b", "F32", "[1]", 12, 16)),
                                  data)),
               Contains("h.st") && Contains("before tensor 'b'"));
    CHECK_THAT(error_of(write_raw(dir, "t.st", header(tensor("a", "F32", "[2]", 0, 8)), data)),
               Contains("t.st") && Contains("last 8 bytes"));
    // Empty tensors take no bytes and may sit anywhere.
    const auto ok = write_raw(dir, "z.st",
                              header(tensor("a", "F32", "[2]", 0, 8) + "," +
                                     tensor("e", "BF16", "[0,4]", 8, 8) + "," +
                                     tensor("b", "F32", "[2]", 8, 16)),
                              data);
    CHECK(SafetensorsFile::open(ok).info("e").nbytes() == 0);
  }
}
