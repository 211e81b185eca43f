// decode(): the only door from bytes to messages. Every bad input is a WireError, never a throw.
#include <catch2/catch.hpp>

#include <cstring>

#include "coordinator/wire.hpp"

using namespace harvest;
using namespace harvest::coord;

namespace {

std::string heartbeat_bytes() {
  OutMessage m;
  auto hb = m.body().initHeartbeat();
  hb.setMemberId(42);
  hb.setStep(7);
  return m.bytes();
}

proto::ErrorKind error_kind(const Decoded& d) { return std::get<WireError>(d).kind; }

}  // namespace

TEST_CASE("decode accepts what OutMessage encodes", "[coordinator]") {
  auto d = decode(heartbeat_bytes(), 1 << 20);
  REQUIRE(std::holds_alternative<std::unique_ptr<InMessage>>(d));
  const auto& m = *std::get<std::unique_ptr<InMessage>>(d);
  CHECK(m.which() == Body::HEARTBEAT);
  CHECK(m.body().getHeartbeat().getMemberId() == 42);
  CHECK(m.body().getHeartbeat().getStep() == 7);
  CHECK(m.root().getVersion() == proto::PROTOCOL_VERSION);
  SECTION("re-encoding is canonical and round-trips") { CHECK(encode(m.root()) == heartbeat_bytes()); }
}

TEST_CASE("decode rejects bad input with the reason", "[coordinator]") {
  const std::string good = heartbeat_bytes();
  SECTION("over the size limit") {
    const auto d = decode(good, good.size() - 8);
    CHECK(error_kind(d) == proto::ErrorKind::TOO_LARGE);
    CHECK_THAT(std::get<WireError>(d).message, Catch::Contains("exceeds the limit"));
  }
  SECTION("empty and not word-aligned") {
    CHECK(error_kind(decode("", 1 << 20)) == proto::ErrorKind::MALFORMED);
    CHECK(error_kind(decode(good.substr(0, good.size() - 3), 1 << 20)) == proto::ErrorKind::MALFORMED);
  }
  SECTION("truncated by whole words") {
    CHECK(error_kind(decode(good.substr(0, good.size() - 8), 1 << 20)) == proto::ErrorKind::MALFORMED);
  }
  SECTION("a segment table claiming more than there is") {
    std::string bad = good;
    bad[4] = static_cast<char>(0xff);
    CHECK(error_kind(decode(bad, 1 << 20)) == proto::ErrorKind::MALFORMED);
  }
  SECTION("another protocol version") {
    OutMessage m;
    m.root().setVersion(proto::PROTOCOL_VERSION + 1);
    m.body().initStatusRequest();
    const auto d = decode(m.bytes(), 1 << 20);
    CHECK(error_kind(d) == proto::ErrorKind::BAD_VERSION);
    CHECK_THAT(std::get<WireError>(d).message, Catch::Contains("protocol version 2"));
  }
  SECTION("a union tag this build does not know decodes, and is named unknown") {
    // Envelope's data section: version (16 bits) then the union discriminant (16 bits).
    std::string bad = good;
    bad[8 + 8 + 2] = static_cast<char>(200);
    auto d = decode(bad, 1 << 20);
    REQUIRE(std::holds_alternative<std::unique_ptr<InMessage>>(d));
    CHECK(body_name(std::get<std::unique_ptr<InMessage>>(d)->which()) == "unknown(200)");
  }
}
