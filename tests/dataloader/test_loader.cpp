// The loader process's pieces: the decode pool's per-sample deadline, the batch wire format and
// its reject rules, and `harvest loader` itself under credit-based backpressure.
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <thread>

#include "coordinator/zmq_socket.hpp"
#include "core/proto/batch.capnp.h"
#include "core/time.hpp"
#include "dataloader/batch_wire.hpp"
#include "dataloader/decode_pool.hpp"
#include "dataloader/manifest.hpp"
#include "dataloader/sampler.hpp"
#include "tests/dataloader/loader_fixture.hpp"

using namespace harvest;
using namespace harvest::data;

namespace {

DecodedSample good_sample(uint8_t value) {
  DecodedSample s;
  s.pixels.assign(4, value);
  s.ids = {1, 2};
  return s;
}

// A job that blocks until released: a decode stuck where FFmpeg's interrupt callback cannot reach.
struct Gate {
  std::mutex mutex;
  std::condition_variable cv;
  bool open = false;
  void release() {
    std::lock_guard<std::mutex> lock(mutex);
    open = true;
    cv.notify_all();
  }
  void wait() {
    std::unique_lock<std::mutex> lock(mutex);
    cv.wait(lock, [this] { return open; });
  }
};

}  // namespace

TEST_CASE("decode pool: a hung decode is abandoned at the deadline and the rest go on",
          "[dataloader][loader]") {
  auto gate = std::make_shared<Gate>();
  DecodePool pool(1, 0.3);
  auto hung = pool.submit([gate] {
    gate->wait();
    return good_sample(9);
  });
  auto next = pool.submit([] { return good_sample(7); });
  Stopwatch clock;
  const DecodedSample first = pool.wait(hung);
  CHECK(clock.seconds() >= 0.25);
  CHECK(clock.seconds() < 3.0);
  REQUIRE(first.bad.has_value());
  CHECK(*first.bad == BadReason::Timeout);
  CHECK_THAT(first.bad_message, Catch::Contains("abandoned"));
  CHECK(pool.abandoned() == 1);
  // The replacement thread takes the next job although the only original thread is still stuck.
  const DecodedSample second = pool.wait(next);
  CHECK_FALSE(second.bad.has_value());
  CHECK(second.pixels == std::vector<uint8_t>(4, 7));
  gate->release();  // the abandoned thread finishes on its own; its result is dropped
}

TEST_CASE("decode pool: results come in order and job errors are rethrown",
          "[dataloader][loader]") {
  DecodePool pool(3, 5.0);
  std::vector<std::shared_ptr<DecodePool::Task>> tasks;
  for (uint8_t i = 0; i < 20; ++i) tasks.push_back(pool.submit([i] { return good_sample(i); }));
  auto failing = pool.submit([]() -> DecodedSample { throw std::runtime_error("not a BadVideo"); });
  for (uint8_t i = 0; i < 20; ++i) CHECK(pool.wait(tasks[i]).pixels[0] == i);
  CHECK_THROWS_WITH(pool.wait(failing), Catch::Contains("not a BadVideo"));
  CHECK(pool.abandoned() == 0);
}

namespace {

const BatchShape kShape{4, 2, 3, 5, 6};  // span 4, T=2, 3x5, context 6

OutgoingBatch outgoing(const std::vector<SlotOnWire>& slots) {
  OutgoingBatch b;
  b.generation = 3;
  b.global_index = 7;
  b.epoch = 1;
  b.cursor = 12;
  b.loader_index = 1;
  b.slots = slots;
  int64_t rows = 0;
  for (const auto& s : slots) rows += s.row >= 0 ? 1 : 0;
  b.frames = std::malloc(static_cast<size_t>(rows) * kShape.clip_bytes() + 1);
  b.tokens = std::malloc(static_cast<size_t>(rows * kShape.context) * 4 + 1);
  for (size_t i = 0; i < static_cast<size_t>(rows) * kShape.clip_bytes(); ++i)
    static_cast<uint8_t*>(b.frames)[i] = static_cast<uint8_t>(i);
  for (int64_t i = 0; i < rows * kShape.context; ++i) static_cast<int32_t*>(b.tokens)[i] = 100 + i;
  return b;
}

std::vector<std::shared_ptr<ZmqMessage>> shared(ZmqParts parts) {
  std::vector<std::shared_ptr<ZmqMessage>> out;
  for (auto& p : parts) out.push_back(std::make_shared<ZmqMessage>(std::move(p)));
  return out;
}

std::vector<SlotOnWire> slots_with_bad() {
  return {{40, 0, ""}, {41, -1, "missing"}, {42, 1, ""}, {43, 2, ""}};
}

}  // namespace

TEST_CASE("batch wire: header frames and tokens round-trip with bad samples in their place",
          "[dataloader][loader]") {
  OutgoingBatch b = outgoing(slots_with_bad());
  const WireBatch w = decode_batch(shared(encode_batch(b, kShape)), kShape, "loader 1 (test)");
  CHECK(b.frames == nullptr);  // taken over by the message, not copied
  CHECK(w.generation == 3);
  CHECK(w.global_index == 7);
  CHECK(w.epoch == 1);
  CHECK(w.cursor == 12);
  CHECK(w.loader_index == 1);
  CHECK(w.rows == 3);
  REQUIRE(w.slots.size() == 4);
  CHECK(w.slots[0].sample_id == 40);
  CHECK(w.slots[0].row == 0);
  CHECK(w.slots[1].sample_id == 41);
  CHECK(w.slots[1].row == -1);
  CHECK(w.slots[1].reason == "missing");
  CHECK(w.slots[3].row == 2);
  REQUIRE(w.frames->size() == 3 * kShape.clip_bytes());
  CHECK(w.frames->data()[kShape.clip_bytes() + 1] == static_cast<uint8_t>(kShape.clip_bytes() + 1));
  int32_t token = 0;
  std::memcpy(&token, w.tokens->data() + 4 * (kShape.context + 1), 4);
  CHECK(token == 100 + kShape.context + 1);
}

TEST_CASE("batch wire: malformed batches are rejected naming the peer", "[dataloader][loader]") {
  const std::string peer = "loader 1 (ipc:///x.sock)";
  auto encoded = [] {
    OutgoingBatch b = outgoing(slots_with_bad());
    return shared(encode_batch(b, kShape));
  };
  SECTION("wrong number of parts") {
    auto parts = encoded();
    parts.pop_back();
    CHECK_THROWS_WITH(decode_batch(parts, kShape, peer),
                      Catch::Contains(peer) && Catch::Contains("2 parts, expected 3"));
  }
  SECTION("header is not Cap'n Proto") {
    auto parts = encoded();
    parts[0] = std::make_shared<ZmqMessage>("garbage!garbage!", 16);
    CHECK_THROWS_WITH(decode_batch(parts, kShape, peer),
                      Catch::Contains(peer) && Catch::Contains("BatchHeader"));
    parts[0] = std::make_shared<ZmqMessage>("odd", 3);
    CHECK_THROWS_WITH(decode_batch(parts, kShape, peer),
                      Catch::Contains(peer) && Catch::Contains("8-byte words"));
  }
  SECTION("shape differs from the run's") {
    const BatchShape other{4, 2, 3, 6, 6};
    CHECK_THROWS_WITH(
        decode_batch(encoded(), other, peer),
        Catch::Contains(peer) && Catch::Contains("tensor frames has shape [3,2,3,5,3]"));
    const BatchShape longer{5, 2, 3, 5, 6};
    CHECK_THROWS_WITH(decode_batch(encoded(), longer, peer),
                      Catch::Contains(peer) && Catch::Contains("expected data.batch_size = 5"));
  }
  SECTION("frame bytes differ from the header") {
    auto parts = encoded();
    parts[1] = std::make_shared<ZmqMessage>(10);
    CHECK_THROWS_WITH(decode_batch(parts, kShape, peer),
                      Catch::Contains(peer) && Catch::Contains("frames part has 10 bytes"));
  }
  SECTION("a bad-sample offset outside the batch, or counts that disagree") {
    auto parts = encoded();
    capnp::MallocMessageBuilder builder;
    auto h = builder.initRoot<proto::BatchHeader>();
    h.setVersion(proto::BATCH_VERSION);
    auto ids = h.initSampleIds(3);
    for (unsigned i = 0; i < 3; ++i) ids.set(i, 40 + i);
    auto bad = h.initBadSamples(1);
    bad[0].setSampleId(43);
    bad[0].setReason("missing");
    bad[0].setOffset(9);
    h.setBadSampleCount(1);
    const auto words = capnp::messageToFlatArray(builder);
    parts[0] = std::make_shared<ZmqMessage>(words.asBytes().begin(), words.asBytes().size());
    CHECK_THROWS_WITH(decode_batch(parts, kShape, peer),
                      Catch::Contains(peer) && Catch::Contains("offset 9 is outside [0, 4)"));
    bad[0].setOffset(1);
    h.setBadSampleCount(2);
    const auto words2 = capnp::messageToFlatArray(builder);
    parts[0] = std::make_shared<ZmqMessage>(words2.asBytes().begin(), words2.asBytes().size());
    CHECK_THROWS_WITH(decode_batch(parts, kShape, peer),
                      Catch::Contains(peer) && Catch::Contains("badSampleCount 2 but 1"));
  }
  SECTION("another version") {
    auto parts = encoded();
    capnp::MallocMessageBuilder builder;
    builder.initRoot<proto::BatchHeader>().setVersion(99);
    const auto words = capnp::messageToFlatArray(builder);
    parts[0] = std::make_shared<ZmqMessage>(words.asBytes().begin(), words.asBytes().size());
    CHECK_THROWS_WITH(decode_batch(parts, kShape, peer),
                      Catch::Contains(peer) && Catch::Contains("batch version 99"));
  }
}

TEST_CASE("control messages round-trip and reject garbage", "[dataloader][loader]") {
  const ZmqMessage m = encode_control({LoaderControlMsg::Kind::Credit, 4, 2, 17, 0, {}});
  const LoaderControlMsg c = decode_control(m, "worker");
  CHECK(c.kind == LoaderControlMsg::Kind::Credit);
  CHECK(c.generation == 4);
  CHECK(c.loader_index == 2);
  CHECK(c.credit == 17);
  CHECK_THROWS_WITH(decode_control(ZmqMessage("12345678", 8), "worker endpoint ipc://w"),
                    Catch::Contains("worker endpoint ipc://w"));

  SECTION("a placed loader's hello carries its member id") {
    LoaderControlMsg hello;
    hello.member_id = 77;
    const LoaderControlMsg h = decode_control(encode_control(hello), "worker");
    CHECK(h.kind == LoaderControlMsg::Kind::Hello);
    CHECK(h.member_id == 77);
  }
  SECTION("start carries the whole assignment and is checked") {
    LoaderControlMsg start;
    start.kind = LoaderControlMsg::Kind::Start;
    start.generation = 9;
    start.loader_index = 1;
    start.start = {3, 4, 2, 41, 5, 123};
    const LoaderControlMsg d = decode_control(encode_control(start), "worker");
    CHECK(d.kind == LoaderControlMsg::Kind::Start);
    CHECK(d.generation == 9);
    CHECK(d.loader_index == 1);
    CHECK(d.start.rank == 3);
    CHECK(d.start.world_size == 4);
    CHECK(d.start.count == 2);
    CHECK(d.start.first_batch == 41);
    CHECK(d.start.epoch == 5);
    CHECK(d.start.cursor == 123);
    start.loader_index = 2;  // loader 2 of 2
    CHECK_THROWS_WITH(decode_control(encode_control(start), "worker tcp://h:1"),
                      Catch::Contains("worker tcp://h:1") && Catch::Contains("loader 2 of 2"));
    start.loader_index = 0;
    start.start.rank = 4;  // rank 4 of 4
    CHECK_THROWS_WITH(decode_control(encode_control(start), "worker"),
                      Catch::Contains("rank 4 of 4"));
  }
}

#ifdef HARVEST_EXE
namespace {

// Starts `harvest loader` against a ROUTER the test owns.
pid_t start_loader(const std::string& config, const std::string& endpoint, int index, int count,
                   SamplerState start, uint64_t first_batch) {
  const std::vector<std::string> args = {HARVEST_EXE,     "--log-level",
                                         "warn",          "loader",
                                         "--config",      config,
                                         "--rank",        "0",
                                         "--world-size",  "1",
                                         "--index",       std::to_string(index),
                                         "--count",       std::to_string(count),
                                         "--endpoint",    endpoint,
                                         "--generation",  "1",
                                         "--epoch",       std::to_string(start.epoch),
                                         "--cursor",      std::to_string(start.cursor),
                                         "--first-batch", std::to_string(first_batch)};
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

struct Received {
  std::string identity;
  std::optional<LoaderControlMsg> control;
  std::optional<WireBatch> batch;
};

std::optional<Received> receive(coord::ZmqSocket& router, const BatchShape& shape, int wait_ms) {
  coord::ZmqSocket* s = &router;
  if (!coord::poll_readable({s}, std::chrono::milliseconds(wait_ms))) return std::nullopt;
  auto parts = recv_parts(router.get(), "test");
  if (!parts) return std::nullopt;
  Received r;
  r.identity.assign(reinterpret_cast<const char*>((*parts)[0]->data()), (*parts)[0]->size());
  parts->erase(parts->begin());
  if (parts->size() == 1)
    r.control = decode_control(*parts->front(), "loader");
  else
    r.batch = decode_batch(std::move(*parts), shape, "loader");
  return r;
}

void grant(coord::ZmqSocket& router, const std::string& identity, uint32_t credit) {
  ZmqParts parts;
  parts.emplace_back(identity.data(), identity.size());
  parts.push_back(encode_control({LoaderControlMsg::Kind::Credit, 1, 1, credit, 0, {}}));
  REQUIRE(send_parts(router.get(), parts, 1000, "test"));
}

}  // namespace

TEST_CASE("harvest loader: sends only what it has credit for and its batches are its shard spans",
          "[dataloader][loader]") {
  test::LoaderFixture data;
  const Config config = data.config();
  const std::string config_file = data.dir.file("config.toml");
  std::ofstream(config_file) << to_toml(config);
  const std::string endpoint = "ipc://" + data.dir.file("l1.sock");
  coord::ZmqContext ctx;
  coord::ZmqSocket router(ctx, ZMQ_ROUTER, endpoint);
  router.bind(endpoint);
  const BatchShape shape{4, 4, 32, 32, 16};
  // Loader 1 of 2 starting at batch 1 (positions 4..7 of rank 0's stream).
  const Manifest manifest = load_manifest(data.manifest);
  EpochSampler expected(manifest.entries.size(), 11, 1, 0);
  expected.skip(4);
  const pid_t pid = start_loader(config_file, endpoint, 1, 2, expected.state(), 1);

  auto hello = receive(router, shape, 10000);
  REQUIRE(hello);
  REQUIRE(hello->control);
  CHECK(hello->control->kind == LoaderControlMsg::Kind::Hello);
  CHECK(hello->control->loader_index == 1);
  // Nothing comes without credit.
  CHECK_FALSE(receive(router, shape, 700));
  grant(router, hello->identity, 2);
  std::vector<uint64_t> indices;
  for (int i = 0; i < 2; ++i) {
    auto r = receive(router, shape, 10000);
    REQUIRE(r);
    REQUIRE(r->batch);
    indices.push_back(r->batch->global_index);
    CHECK(r->batch->slots.size() == 4);
    const SamplerState at = expected.state();
    CHECK(r->batch->epoch == at.epoch);
    CHECK(r->batch->cursor == at.cursor);
    for (const auto& slot : r->batch->slots) CHECK(slot.sample_id == expected.next_wrapping());
    expected.skip(4);  // the other loader's batch
  }
  CHECK(indices == std::vector<uint64_t>{1, 3});
  // Credit spent: the third batch waits for more.
  CHECK_FALSE(receive(router, shape, 1000));
  grant(router, hello->identity, 1);
  auto third = receive(router, shape, 10000);
  REQUIRE(third);
  REQUIRE(third->batch);
  CHECK(third->batch->global_index == 5);

  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
#endif  // HARVEST_EXE
