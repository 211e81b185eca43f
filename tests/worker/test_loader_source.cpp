// LoaderSource against ManifestSource: the same batches from loader processes as from in-process
// decoding; a killed or hung loader restarted with nothing lost or repeated; malformed loaders
// named in the error; credit bounding what a worker holds.
#include <signal.h>
#include <stdlib.h>

#include <fstream>
#include <thread>

#include "coordinator/curve.hpp"
#include "coordinator/zmq_socket.hpp"
#include "core/time.hpp"
#include "model/tokenizer/tokenizer.hpp"
#include "tests/dataloader/loader_fixture.hpp"
#include "tests/support/run.hpp"
#include "worker/loader_hub.hpp"
#include "worker/loader_source.hpp"
#include "worker/manifest_source.hpp"
// Last: LibTorch pulls in glog, whose CHECK would replace Catch's.
#include "tests/support/torch_catch.hpp"

using namespace harvest;

namespace {

std::shared_ptr<const tokenizer::Tokenizer> clip_tokenizer(const Config& config) {
  return std::make_shared<const tokenizer::Tokenizer>(
      tokenizer::Tokenizer::load(config.model.vocab));
}

LoaderSourceOptions real_loaders() {
  LoaderSourceOptions o;
  o.exe = HARVEST_EXE;
  return o;
}

// Every sample id handed out over `batches` batches, and the sampler state after each.
struct Trace {
  std::vector<int64_t> ids;
  std::vector<std::string> states;
  int64_t bad = 0;
};

}  // namespace

TEST_CASE("loader processes give the in-process batches: same ids and bytes and skips and states",
          "[worker][loader]") {
  test::LoaderFixture data;
  const int loaders = GENERATE(1, 2);
  INFO("loaders_per_worker = " << loaders);
  const Config config = data.config({"data.loaders_per_worker=" + std::to_string(loaders)});
  ManifestSource local(config, clip_tokenizer(config), 0, 1);
  LoaderSource remote(config, 0, 1, {}, real_loaders());
  CHECK(remote.dataset_size() == data.rows);
  int64_t bad = 0;
  // Eight batches of 4 cover more than an epoch of ~22 rows: the stream rolls over inside a batch.
  for (int b = 0; b < 8; ++b) {
    INFO("batch " << b);
    const HostBatch want = local.next();
    const HostBatch got = remote.next();
    CHECK(got.sample_ids == want.sample_ids);
    CHECK(got.sample_ids.size() == 4u);
    CHECK(got.bad_samples == want.bad_samples);
    REQUIRE(got.video.sizes() == want.video.sizes());
    CHECK(torch::equal(got.video, want.video));
    CHECK(torch::equal(got.text, want.text));
    CHECK(remote.state() == local.state());
    bad += got.bad_samples;
  }
  CHECK(bad >= 2);  // the missing and the zero-byte video (again in the second epoch)
  CHECK(remote.epoch() == 1);
  CHECK(remote.bad_counts() == local.bad_counts());
  CHECK(remote.restarts() == 0);
}

TEST_CASE("a SIGKILLed or hung loader is restarted: the epoch's sample ids are unchanged",
          "[worker][loader]") {
  test::LoaderFixture data;
  const Config config =
      data.config({"data.loaders_per_worker=2", "data.loader_timeout_s=4", "data.queue_depth=1"});
  ManifestSource local(config, clip_tokenizer(config), 0, 1);
  LoaderSource remote(config, 0, 1, {}, real_loaders());
  std::vector<int64_t> want, got;
  for (int b = 0; b < 10; ++b) {
    if (b == 2) {
      // Killed: the worker sees the exit and restarts it at its first batch not yet received.
      REQUIRE(::kill(remote.loader_pids()[0], SIGKILL) == 0);
    }
    if (b == 5) {
      // Hung (stopped): nothing arrives within data.loader_timeout_s; it is killed and restarted.
      REQUIRE(::kill(remote.loader_pids()[1], SIGSTOP) == 0);
    }
    for (int64_t id : local.next().sample_ids) want.push_back(id);
    for (int64_t id : remote.next().sample_ids) got.push_back(id);
    CHECK(remote.state() == local.state());
  }
  CHECK(got == want);
  CHECK(remote.restarts() >= 2);  // more if a restarted loader was slow to start on a busy machine
}

TEST_CASE("credit bounds what a worker holds: never more than data.queue_depth per loader",
          "[worker][loader]") {
  test::LoaderFixture data;
  const Config config = data.config({"data.queue_depth=2", "data.decode_threads=2"});
  LoaderSource remote(config, 0, 1, {}, real_loaders());
  // A slow consumer: the loader runs ahead only as far as its credit.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  for (int b = 0; b < 6; ++b) {
    remote.next();
    CHECK(remote.peak_queued() <= 2);
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  }
  CHECK(remote.peak_queued() == 2);
}

TEST_CASE("malformed loaders are rejected with an error naming the loader and its endpoint",
          "[worker][loader]") {
  test::LoaderFixture data(12);
  LoaderSourceOptions fake;
  fake.exe = HARVEST_FAKE_LOADER;
  struct Case {
    const char* mode;
    const char* message;
  };
  const Case c =
      GENERATE(Case{"garbage", "not a whole number of 8-byte words"},
               Case{"gap", "batch 1 arrived where batch 0 was expected (a gap)"},
               Case{"greedy", "sent without credit"},
               Case{"shape", "tensor frames has shape [4,4,32,34,3], expected [4,4,32,32,3]"},
               Case{"silent", "data.loader_max_restarts = 1"});
  INFO("mode " << c.mode);
  ::setenv("HARVEST_FAKE_LOADER", c.mode, 1);
  const Config config = data.config({"data.loader_timeout_s=0.5", "data.loader_max_restarts=1"});
  LoaderSource remote(config, 0, 1, {}, fake);
  const std::string endpoint = remote.endpoint(0);
  // Let everything it sends arrive before the first batch is consumed (greedy's third batch).
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  try {
    remote.next();
    FAIL("no error");
  } catch (const Error& e) {
    const std::string what = e.what();
    CHECK_THAT(what, Catch::Contains("loader 0 (pid ") && Catch::Contains(endpoint) &&
                         Catch::Contains(c.message));
  }
  ::unsetenv("HARVEST_FAKE_LOADER");
}

TEST_CASE("harvest train: loader processes and in-process decoding train identically",
          "[worker][loader][cli]") {
  test::LoaderFixture data;
  const std::string common =
      std::string(HARVEST_EXE) + " train --set data.train_manifest=" + data.manifest +
      " --set model.vocab=" HARVEST_SOURCE_DIR
      "/../shared/clip/bpe_simple_vocab_16e6.txt.gz"
      " --set model.image_size=32 --set model.frames=4 --set model.context_length=16"
      " --set model.freeze_text=false --set data.batch_size=4 --set train.steps=3"
      " --set train.deterministic=true --set train.threads=1 --set checkpoint.every_steps=0"
      " --set train.device=cpu";
  auto losses = [&](int loaders) {
    const std::string run = data.dir.file("run" + std::to_string(loaders));
    const auto r = test::run(common + " --set data.loaders_per_worker=" + std::to_string(loaders) +
                             " --set logging.run_dir=" + run);
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    std::vector<std::string> out;
    std::ifstream in(run + "/metrics.jsonl");
    for (std::string line; std::getline(in, line);) {
      const auto j = nlohmann::json::parse(line);
      out.push_back(j.at("loss").dump() + "/" + j.at("bad_samples").dump());
    }
    return out;
  };
  const auto in_process = losses(0);
  const auto with_loaders = losses(1);
  REQUIRE(in_process.size() == 3u);
  CHECK(with_loaders == in_process);
}

TEST_CASE("a loader binary that cannot start is reported after data.loader_max_restarts",
          "[worker][loader]") {
  test::LoaderFixture data(12);
  LoaderSourceOptions missing;
  missing.exe = data.dir.file("no-such-harvest");
  const Config config = data.config({"data.loader_max_restarts=2"});
  LoaderSource remote(config, 0, 1, {}, missing);
  CHECK_THROWS_WITH(remote.next(), Catch::Contains("loader 0 (pid ") &&
                                       Catch::Contains("could not be started") &&
                                       Catch::Contains("no-such-harvest") &&
                                       Catch::Contains("restarted 2 times in a row"));
  CHECK(remote.restarts() == 3);
}

TEST_CASE("a worker's loader hub with CURVE keys admits only authorized CURVE loaders",
          "[worker][loader][curve]") {
  const test::TempDir temp;
  const std::filesystem::path dir = temp.path();
  for (const char* name : {"server", "worker", "loader", "stranger"})
    coord::write_keypair(coord::generate_keypair(), (dir / name).string());
  auto key = [&](const char* name, const char* kind) {
    return coord::read_key_file((dir / cat(name, ".", kind)).string(), name);
  };
  {
    std::ofstream allow(dir / "authorized");
    allow << "# worker and loader\n" << key("worker", "public") << "\n" << key("loader", "public") << "\n";
  }
  Config config;
  config.dist.host = "127.0.0.1";
  config.coordinator.curve_server_public = (dir / "server.public").string();
  config.coordinator.curve_client_public = (dir / "worker.public").string();
  config.coordinator.curve_client_secret = (dir / "worker.secret").string();
  config.coordinator.curve_authorized_keys = (dir / "authorized").string();
  LoaderHub hub(config);
  REQUIRE(hub.curve_public() == key("worker", "public"));

  coord::ZmqContext zmq;
  auto dial = [&](const std::string& id, const char* pair) {
    auto socket = std::make_unique<coord::ZmqSocket>(zmq, ZMQ_DEALER, id);
    socket->set(ZMQ_ROUTING_ID, id);
    socket->set(ZMQ_LINGER, 0);
    if (pair) {
      socket->set(ZMQ_CURVE_SERVERKEY, hub.curve_public());
      socket->set(ZMQ_CURVE_PUBLICKEY, key(pair, "public"));
      socket->set(ZMQ_CURVE_SECRETKEY, key(pair, "secret"));
    }
    socket->connect(hub.endpoint());
    socket->send({cat("hello from ", id)});
    return socket;
  };
  // A plaintext peer and a CURVE peer whose key is not listed first, then the authorized loader.
  auto plain = dial("plain", nullptr);
  auto stranger = dial("stranger", "stranger");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto loader = dial("loader", "loader");
  std::vector<std::string> heard;
  const Deadline deadline = Deadline::after_seconds(3.0);
  while (!deadline.expired())
    if (auto parts = hub.socket().recv(std::chrono::milliseconds(100)); parts && parts->size() == 2)
      heard.push_back((*parts)[0] + ": " + (*parts)[1]);
  CHECK(heard == std::vector<std::string>{"loader: hello from loader"});

  // Without CURVE keys the hub serves plaintext and has no key to hand out.
  Config open;
  open.dist.host = "127.0.0.1";
  CHECK(LoaderHub(open).curve_public().empty());
}
