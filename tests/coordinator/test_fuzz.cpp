// Fuzz: >= 100k random and mutated messages against a live coordinator process, which must stay
// alive, keep its job (a real peer keeps its membership and generation) and keep answering.
#include <catch2/catch.hpp>

#include <random>

#include "cluster.hpp"
#include "coordinator/wire.hpp"

using namespace harvest;
using namespace harvest::test;
using namespace std::chrono_literals;

namespace {

// Valid envelopes of every kind, peer-facing and internal: the seeds the mutations start from.
std::vector<std::string> seed_corpus() {
  std::vector<std::string> seeds;
  auto add = [&](const std::function<void(coord::Body::Builder)>& fill) {
    coord::OutMessage m;
    fill(m.body());
    seeds.push_back(m.bytes());
  };
  add([](auto b) {
    auto r = b.initRegister();
    r.setRole(proto::Role::WORKER);
    r.setHost("fuzz-host");
    r.setPid(1);
    r.setDevice("cpu");
  });
  add([](auto b) { b.initHeartbeat().setMemberId(1); });
  add([](auto b) { b.initHeartbeat().setMemberId(777); });
  add([](auto b) { b.initStepReport().setStep(5); });
  add([](auto b) { b.initStatusRequest(); });
  add([](auto b) { b.initLeave().setMemberId(999); });
  add([](auto b) {
    auto o = b.initRendezvousOffer();
    o.setGeneration(1);
    o.getBackend().initNcclUniqueId(128);
  });
  add([](auto b) {
    auto a = b.initCheckpointAck();
    a.setGeneration(1);
    a.setStep(10);
    a.setRank(0);
    a.setPath("x");
  });
  add([](auto b) { b.initMemberLost().setMemberId(1); });
  add([](auto b) { b.initGenerationFormed().initMemberIds(3); });
  add([](auto b) { b.initJournalWritten(); });
  add([](auto b) { b.initShutdown().setReason("fuzz"); });
  add([](auto b) { b.initError().setMessage("fuzz"); });
  add([](auto b) { b.initStatusReply().initMembers(2); });
  return seeds;
}

std::string mutate(const std::string& seed, std::mt19937_64& rng) {
  std::string m = seed;
  switch (rng() % 6) {
    case 0:  // flip bytes
      for (int i = 0, n = 1 + static_cast<int>(rng() % 8); i < n; ++i) m[rng() % m.size()] ^= static_cast<char>(1 + rng() % 255);
      break;
    case 1:  // truncate
      m.resize(rng() % m.size());
      break;
    case 2:  // append garbage
      for (int i = 0, n = 1 + static_cast<int>(rng() % 64); i < n; ++i) m.push_back(static_cast<char>(rng()));
      break;
    case 3:  // huge segment count / size in the framing header
      for (int i = 0; i < 8 && i < static_cast<int>(m.size()); ++i) m[i] = static_cast<char>(0xff);
      break;
    case 4:  // unknown union tag / wrong version in the root struct's data section
      if (m.size() >= 24) {
        m[16 + rng() % 8] = static_cast<char>(rng());
      }
      break;
    default:  // random words
      for (size_t i = 0; i + 8 <= m.size(); i += 8)
        if (rng() % 4 == 0) m[i + rng() % 8] = static_cast<char>(rng());
  }
  return m;
}

}  // namespace

TEST_CASE("fuzz: 100k random and mutated messages leave the coordinator alive and answering", "[coordinator]") {
  Cluster cluster({"dist.world_size=1", "coordinator.max_message_mb=1"});
  cluster.start_coordinator();
  cluster.start_peer("w0", {"--role", "worker"});
  REQUIRE(cluster.wait_for([](auto s) { return workers_running(s, 1, 1); }, 10s));
  const auto before = cluster.status();
  REQUIRE(before);
  const uint64_t member = (*before)->body().getStatusReply().getMembers()[0].getMemberId();

  const auto seeds = seed_corpus();
  std::mt19937_64 rng(20261128);
  coord::ZmqContext ctx;
  coord::ZmqSocket fuzzer(ctx, ZMQ_DEALER, cluster.address());
  fuzzer.set(ZMQ_SNDHWM, 2000);
  fuzzer.connect(cluster.address());
  const Stopwatch clock;
  size_t sent = 0, replies = 0;
  constexpr size_t kMessages = 100000;
  while (sent < kMessages) {
    coord::Multipart frames;
    const auto kind = rng() % 10;
    if (kind < 3) {  // random bytes, random length (often not a whole number of words)
      std::string junk(rng() % 300, '\0');
      for (auto& c : junk) c = static_cast<char>(rng());
      frames.push_back(junk);
    } else if (kind < 9) {
      frames.push_back(mutate(seeds[rng() % seeds.size()], rng));
    } else {  // several frames, or an empty one
      frames.assign(1 + rng() % 3, mutate(seeds[rng() % seeds.size()], rng));
      if (rng() % 2) frames.assign(1, std::string());
    }
    if (fuzzer.send(frames)) {
      ++sent;
    } else {
      coord::poll_readable({&fuzzer}, 5ms);
    }
    while (fuzzer.recv(0ms)) ++replies;  // error replies: keep our queue drained
    REQUIRE(clock.seconds() < 60.0);
  }
  const Deadline drain(2s);
  while (!drain.expired() && fuzzer.recv(50ms)) ++replies;
  std::printf("[measure] fuzz: %zu messages in %.1f s, %zu replies\n", sent, clock.seconds(), replies);

  SECTION("an over-limit message is refused without harm") {
    coord::ZmqSocket big(ctx, ZMQ_DEALER, cluster.address());
    big.connect(cluster.address());
    std::this_thread::sleep_for(100ms);
    CHECK(big.send({std::string(2u << 20, 'x')}));
  }
  INFO(cluster.logs());
  CHECK(cluster.coordinator().running());
  const auto after = cluster.status(5s);
  REQUIRE(after);
  const auto s = (*after)->body().getStatusReply();
  CHECK(replies > kMessages / 2);
  // The real peer is still the same member of the same generation.
  bool found = false;
  for (const auto m : s.getMembers())
    if (m.getMemberId() == member) found = m.getState() == proto::MemberState::RUNNING;
  CHECK(found);
  CHECK(s.getGeneration() == 1);
  CHECK(cluster.peer("w0").running());
}
