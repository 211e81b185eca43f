// CURVE: only peers holding the server's public key and an allow-listed client key get in.
#include <catch2/catch.hpp>

#include <fstream>

#include "cluster.hpp"
#include "coordinator/curve.hpp"
#include "core/error.hpp"

using namespace harvest;
using namespace harvest::test;
using namespace std::chrono_literals;

TEST_CASE("key files: keygen output reads back; bad files name the file", "[coordinator]") {
  Cluster scratch;
  const std::string prefix = scratch.dir() + "/node";
  const auto keys = coord::generate_keypair();
  coord::write_keypair(keys, prefix);
  CHECK(coord::read_key_file(prefix + ".public", "k") == keys.public_key);
  CHECK(coord::read_key_file(prefix + ".secret", "k") == keys.secret_key);
  SECTION("the secret is never overwritten") { CHECK_THROWS_AS(coord::write_keypair(keys, prefix), Error); }
  SECTION("a file that is not a key is refused with its path") {
    std::ofstream(scratch.dir() + "/bad.public") << "not-a-key\n";
    CHECK_THROWS_WITH(coord::read_key_file(scratch.dir() + "/bad.public", "coordinator.curve_server_public"),
                      Catch::Contains("bad.public") && Catch::Contains("coordinator.curve_server_public"));
    std::ofstream(scratch.dir() + "/allow") << keys.public_key << "\n# comment\n\nshort\n";
    CHECK_THROWS_WITH(coord::read_authorized_keys(scratch.dir() + "/allow"), Catch::Contains("allow:4"));
  }
}

TEST_CASE("CURVE on: an allow-listed peer joins, others are refused", "[coordinator]") {
  Cluster keys_dir;
  const auto server = coord::generate_keypair();
  const auto good = coord::generate_keypair();
  const auto stranger = coord::generate_keypair();
  const std::string d = keys_dir.dir();
  coord::write_keypair(server, d + "/server");
  coord::write_keypair(good, d + "/good");
  coord::write_keypair(stranger, d + "/stranger");
  std::ofstream(d + "/authorized") << "# workers\n" << good.public_key << "\n";

  Cluster cluster({"dist.world_size=1", "coordinator.curve_server_public=" + d + "/server.public",
                   "coordinator.curve_server_secret=" + d + "/server.secret",
                   "coordinator.curve_client_public=" + d + "/good.public",
                   "coordinator.curve_client_secret=" + d + "/good.secret",
                   "coordinator.curve_authorized_keys=" + d + "/authorized"});
  cluster.set_peer_sets({"dist.world_size=1"});  // peers bring their keys on the command line
  const coord::CurveClientKeys good_keys{server.public_key, good.public_key, good.secret_key};
  cluster.start_coordinator(good_keys);
  const bool answers = cluster.status(10s, good_keys).has_value();
  INFO(cluster.logs());
  REQUIRE(answers);

  cluster.start_peer("good", {"--role", "worker", "--server-key", d + "/server.public", "--public-key",
                              d + "/good.public", "--secret-key", d + "/good.secret"});
  cluster.start_peer("stranger", {"--role", "worker", "--server-key", d + "/server.public", "--public-key",
                                  d + "/stranger.public", "--secret-key", d + "/stranger.secret"});
  cluster.start_peer("plain", {"--role", "worker"});
  auto members = [&]() -> size_t {
    auto s = cluster.status(2s, good_keys);
    return s ? (*s)->body().getStatusReply().getMembers().size() : 99;
  };
  const Deadline deadline(5s);
  while (members() < 1 && !deadline.expired()) std::this_thread::sleep_for(50ms);
  std::this_thread::sleep_for(1s);  // time for the refused peers to try (and fail) repeatedly
  INFO(cluster.logs());
  CHECK(members() == 1);
  auto s = cluster.status(2s, good_keys);
  REQUIRE(s);
  CHECK((*s)->body().getStatusReply().getMembers()[0].getPid() == static_cast<uint32_t>(cluster.peer("good").pid()));
  SECTION("status without keys and with a stranger's keys gets no answer") {
    CHECK_FALSE(cluster.status(500ms));
    CHECK_FALSE(cluster.status(500ms, coord::CurveClientKeys{server.public_key, stranger.public_key, stranger.secret_key}));
  }
  CHECK(cluster.coordinator().output().find("refused CURVE client " + stranger.public_key) != std::string::npos);
}
