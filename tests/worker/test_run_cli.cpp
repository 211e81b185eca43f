// `harvest run` end to end with real processes on loopback: a coordinator and two Gloo workers
// train the tiny model on synthetic data; checkpoints are committed through the coordinator.
// Failure cases: a SIGKILLed worker (detection and recovery times measured and printed; the
// final state must equal an uninterrupted run's bitwise), SIGTERM to the launcher (final
// checkpoint, exit 0), a bad config (exit 2 naming the key).
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <regex>
#include <sstream>

#include "checkpoint/commit.hpp"
#include "checkpoint/reader.hpp"
#include "coordinator/client.hpp"
#include "coordinator/zmq_socket.hpp"
#include "core/time.hpp"
#include "dataloader/batch_wire.hpp"
#include "tests/coordinator/process.hpp"
#include "tests/support/run.hpp"

using namespace harvest;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A temporary folder with synthetic clips and a vocabulary learned from their captions.
class RunFixture {
 public:
  RunFixture() {
    std::string tmpl = (fs::temp_directory_path() / "harvest-run-XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
    const std::string d = dir_.string();
    const auto synth = test::run(exe() + " data synth --out " + d +
                                 "/data --clips 48 --seed 3 --size 32 --frames 4");
    if (synth.exit_code != 0) throw std::runtime_error("data synth failed: " + synth.output);
    const auto vocab = test::run(exe() + " data vocab --manifest " + d +
                                 "/data/train.jsonl --size 700 --out " + d + "/vocab.txt.gz");
    if (vocab.exit_code != 0) throw std::runtime_error("data vocab failed: " + vocab.output);
  }
  ~RunFixture() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  static std::string exe() { return HARVEST_EXE; }
  const fs::path& dir() const { return dir_; }

  // `harvest run` for run folder `name` with its own coordinator port; `sets` come last.
  std::vector<std::string> argv(const std::string& name, const std::string& address,
                                const std::vector<std::string>& sets) const {
    const std::string d = dir_.string();
    std::vector<std::string> args{exe(), "run"};
    for (const std::string& s :
         {"data.train_manifest=" + d + "/data/train.jsonl", "model.vocab=" + d + "/vocab.txt.gz",
          std::string("model.image_size=32"), std::string("model.frames=4"),
          std::string("model.context_length=16"), std::string("model.freeze_text=false"),
          std::string("data.batch_size=2"), std::string("train.device=cpu"),
          std::string("train.threads=1"), std::string("dist.world_size=2"),
          std::string("dist.backend=gloo"), std::string("dist.timeout_s=20"),
          "coordinator.address=" + address, "logging.run_dir=" + d + "/" + name}) {
      args.push_back("--set");
      args.push_back(s);
    }
    for (const auto& s : sets) {
      args.push_back("--set");
      args.push_back(s);
    }
    return args;
  }

  std::string command(const std::string& name, const std::string& address,
                      const std::vector<std::string>& sets) const {
    std::string out;
    for (const auto& a : argv(name, address, sets)) out += (out.empty() ? "" : " ") + a;
    return out;
  }

  fs::path checkpoints(const std::string& name) const { return dir_ / name / "checkpoints"; }
  std::string log(const std::string& name, const std::string& child) const {
    std::ifstream in(dir_ / name / "logs" / (child + ".log"));
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  fs::path dir_;
};

// A loopback endpoint for one run's coordinator (an ephemeral port, released for it to bind).
std::string address() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return "tcp://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
}

int64_t latest_step(const fs::path& checkpoints) {
  try {
    const auto manifest = checkpoint::read_manifest(checkpoints);
    return manifest && !manifest->committed.empty() ? manifest->committed.front().step : 0;
  } catch (const std::exception&) {
    return 0;  // being replaced this very moment
  }
}

// Every record of every part of the latest committed checkpoint, by "part/record".
std::map<std::string, std::string> final_state(const fs::path& checkpoints) {
  const auto latest = checkpoint::resolve_latest(checkpoints);
  if (!latest) throw std::runtime_error("no committed checkpoint in " + checkpoints.string());
  std::map<std::string, std::string> state;
  for (const auto& part : latest->parts) {
    const checkpoint::CheckpointReader reader(part);
    for (const auto& r : reader.records()) {
      const auto bytes = reader.read(r.path);
      state[part.filename().string() + "/" + r.path] =
          std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    }
  }
  return state;
}

// Records that differ between two runs' final checkpoints (each named with UNSCOPED_INFO).
size_t differing_records(const fs::path& expected_dir, const fs::path& actual_dir) {
  const auto expected = final_state(expected_dir);
  const auto actual = final_state(actual_dir);
  size_t different = expected.size() == actual.size() ? 0 : 1;
  for (const auto& [name, bytes] : expected) {
    const auto it = actual.find(name);
    if (it == actual.end() || it->second != bytes) {
      UNSCOPED_INFO("differs: " << name);
      ++different;
    }
  }
  return different;
}

// Processes started by `parent` whose command line contains `word`.
std::vector<pid_t> children_of(pid_t parent, const std::string& word) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& task : fs::directory_iterator("/proc/" + std::to_string(parent) + "/task", ec)) {
    std::ifstream children(task.path() / "children");
    pid_t pid = 0;
    while (children >> pid) {
      std::ifstream cmdline("/proc/" + std::to_string(pid) + "/cmdline");
      std::string args((std::istreambuf_iterator<char>(cmdline)), std::istreambuf_iterator<char>());
      if (args.find(word) != std::string::npos) out.push_back(pid);
    }
  }
  return out;
}

// The unix_ms of the first log line matching `pattern` after `from`, or -1.
int64_t event_ms(const std::string& log, const std::string& pattern, int64_t from = 0) {
  const std::regex line(pattern + R"([^\n]*unix_ms=(\d+))");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), line); it != std::sregex_iterator();
       ++it) {
    const int64_t ms = std::stoll((*it)[1].str());
    if (ms >= from) return ms;
  }
  return -1;
}

// Milliseconds since midnight of the first log line containing `text` ("YYYY-MM-DD HH:MM:SS.mmm"
// at the start of each line), or -1.
int64_t log_ms(const std::string& log, const std::string& text) {
  const size_t at = log.find(text);
  if (at == std::string::npos) return -1;
  const size_t line = log.rfind('\n', at) == std::string::npos ? 0 : log.rfind('\n', at) + 1;
  static const std::regex stamp(R"(^\d{4}-\d{2}-\d{2} (\d{2}):(\d{2}):(\d{2})\.(\d{3}))");
  std::smatch m;
  const std::string head = log.substr(line, 23);
  if (!std::regex_search(head, m, stamp)) return -1;
  return ((std::stoll(m[1]) * 60 + std::stoll(m[2])) * 60 + std::stoll(m[3])) * 1000 +
         std::stoll(m[4]);
}

std::optional<pid_t> loader_pid(const std::string& address) {
  const auto reply = coord::query_status(address, {}, 1000ms);
  if (!reply) return std::nullopt;
  for (const auto m : (*reply)->body().getStatusReply().getMembers())
    if (m.getRole() == proto::Role::LOADER && m.getState() == proto::MemberState::RUNNING)
      return static_cast<pid_t>(m.getPid());
  return std::nullopt;
}

std::optional<pid_t> worker_pid(const std::string& address, int rank) {
  const auto reply = coord::query_status(address, {}, 1000ms);
  if (!reply) return std::nullopt;
  for (const auto m : (*reply)->body().getStatusReply().getMembers())
    if (m.getRole() == proto::Role::WORKER && m.getRank() == rank &&
        m.getState() == proto::MemberState::RUNNING)
      return static_cast<pid_t>(m.getPid());
  return std::nullopt;
}

// Runs job `name`, SIGKILLs the process `victim` names once the first checkpoint (step 10) is
// committed, and waits up to `end_wait` for the job to end; returns the launcher's output.
using Victim = std::function<std::optional<pid_t>(const std::string& addr, test::ChildProcess& run)>;
std::string run_and_kill(const RunFixture& f, const std::string& name,
                         const std::vector<std::string>& sets, const Victim& victim,
                         std::chrono::seconds end_wait = 60s) {
  const std::string addr = address();
  test::ChildProcess run(f.argv(name, addr, sets), (f.dir() / (name + ".log")).string());
  const Deadline deadline(60s);
  while (latest_step(f.checkpoints(name)) < 10 && !deadline.expired() && run.running())
    std::this_thread::sleep_for(20ms);
  std::optional<pid_t> pid;
  while (!pid && !deadline.expired()) pid = victim(addr, run);
  INFO(run.output() << f.log(name, "coordinator") << f.log(name, "worker0")
                    << f.log(name, "worker1") << f.log(name, "loader0") << f.log(name, "loader1"));
  REQUIRE(pid);
  REQUIRE(::kill(*pid, SIGKILL) == 0);
  const auto status = run.wait(end_wait);
  REQUIRE(status);
  CHECK(*status == 0);
  CHECK_THAT(run.output(), Catch::Contains("\"checkpoint_step\":60"));
  return run.output();
}

}  // namespace

TEST_CASE("harvest run: two gloo workers reach the target step through coordinator commits",
          "[worker][run]") {
  RunFixture f;
  const auto result =
      test::run(f.command("run", address(),
                          {"train.steps=6", "checkpoint.every_steps=3",
                           "checkpoint.save_initial=true", "checkpoint.keep_every=3"}));
  INFO(result.output << f.log("run", "coordinator") << f.log("run", "worker0")
                     << f.log("run", "worker1"));
  REQUIRE(result.exit_code == 0);
  CHECK_THAT(result.output,
             Catch::Contains("\"checkpoint_step\":6") && Catch::Contains("every worker finished"));
  const auto latest = checkpoint::resolve_latest(f.checkpoints("run"));
  REQUIRE(latest);
  CHECK(latest->checkpoint.world_size == 2);
  CHECK(latest->parts.size() == 2);
  const auto verify = test::run(f.exe() + " ckpt verify " + f.checkpoints("run").string());
  INFO(verify.output);
  CHECK(verify.exit_code == 0);
  // Every commit went through the coordinator (phase two), the starting weights as step 0
  // (kept by keep_every), and both ranks wrote metrics.
  CHECK_THAT(f.log("run", "coordinator"), Catch::Contains("checkpoint step 0 committed") &&
                                              Catch::Contains("checkpoint step 3 committed") &&
                                              Catch::Contains("checkpoint step 6 committed"));
  const auto manifest = checkpoint::read_manifest(f.checkpoints("run"));
  REQUIRE(manifest);
  std::vector<int64_t> steps;
  for (const auto& c : manifest->committed) steps.push_back(c.step);
  std::sort(steps.begin(), steps.end());
  CHECK(steps == std::vector<int64_t>{0, 3, 6});
  std::ifstream metrics(f.dir() / "run" / "metrics.jsonl");
  std::string all((std::istreambuf_iterator<char>(metrics)), std::istreambuf_iterator<char>());
  CHECK_THAT(all, Catch::Contains("\"rank\":0") && Catch::Contains("\"rank\":1"));
}

TEST_CASE("harvest run: one worker acks its self-committed checkpoints to the coordinator",
          "[worker][run]") {
  RunFixture f;
  const auto result = test::run(f.command(
      "one", address(),
      {"dist.world_size=1", "train.steps=4", "checkpoint.every_steps=2",
       "checkpoint.save_initial=true"}));
  INFO(result.output << f.log("one", "coordinator") << f.log("one", "worker0"));
  REQUIRE(result.exit_code == 0);
  CHECK_THAT(result.output, Catch::Contains("\"checkpoint_step\":4"));
  CHECK_THAT(f.log("one", "coordinator"), Catch::Contains("checkpoint step 0 committed") &&
                                              Catch::Contains("checkpoint step 2 committed") &&
                                              Catch::Contains("checkpoint step 4 committed"));
}

TEST_CASE("harvest run: a SIGKILLed worker is detected in under 1 s and the run ends bitwise equal",
          "[worker][run]") {
  RunFixture f;
  const std::vector<std::string> sets{"train.steps=60", "checkpoint.every_steps=10"};
  const auto reference = test::run(f.command("reference", address(), sets));
  INFO(reference.output);
  REQUIRE(reference.exit_code == 0);

  const std::string addr = address();
  test::ChildProcess run(f.argv("killed", addr, sets), (f.dir() / "killed.log").string());
  const Deadline deadline(60s);
  while (latest_step(f.checkpoints("killed")) < 10 && !deadline.expired() && run.running())
    std::this_thread::sleep_for(20ms);
  std::optional<pid_t> victim;
  while (!victim && !deadline.expired()) victim = worker_pid(addr, 1);
  INFO(run.output() << f.log("killed", "coordinator") << f.log("killed", "worker0")
                    << f.log("killed", "worker1"));
  REQUIRE(victim);
  const int64_t killed_at = unix_ms();
  REQUIRE(::kill(*victim, SIGKILL) == 0);
  const auto status = run.wait(60s);
  REQUIRE(status);
  REQUIRE(*status == 0);
  CHECK_THAT(run.output(),
             Catch::Contains("\"restarts\":1") && Catch::Contains("\"checkpoint_step\":60"));

  const std::string survivor = f.log("killed", "worker0");
  const int64_t aborted_at = event_ms(survivor, "abort: generation 1 ends", killed_at);
  const int64_t recovered_at = event_ms(survivor, "generation 2: first step done", killed_at);
  REQUIRE(aborted_at > 0);
  REQUIRE(recovered_at > 0);
  const double detection_s = static_cast<double>(aborted_at - killed_at) / 1000.0;
  const double recovery_s = static_cast<double>(recovered_at - killed_at) / 1000.0;
  WARN("worker SIGKILL: abort reached the survivor after "
       << detection_s << " s; first step of generation 2 after " << recovery_s << " s");
  CHECK(detection_s < 1.0);

  // Same world size restored: every record of both parts (weights, optimizer, RNG, data
  // position, progress) equals the uninterrupted run's.
  CHECK(differing_records(f.checkpoints("reference"), f.checkpoints("killed")) == 0);
}

TEST_CASE(
    "harvest run: SIGKILLed loader and coordinator are replaced and the run ends bitwise equal",
    "[worker][run]") {
  RunFixture f;
  // dist.timeout_s at its default (60 s): under heavy load a loader's first batch can take longer
  // than the fixture's 20 s, and a rank waiting in its first all-reduce for the other rank's
  // data would time out (exit 1, an extra restart) though nothing is wrong.
  const std::vector<std::string> sets{"train.steps=60", "checkpoint.every_steps=10",
                                      "data.loaders_per_worker=1", "dist.timeout_s=60"};
  const auto reference = test::run(f.command("reference", address(), sets));
  INFO(reference.output);
  REQUIRE(reference.exit_code == 0);

  SECTION("loader: its worker restarts it where it stopped") {
    const std::string out =
        run_and_kill(f, "loader", sets, [](const std::string& addr, test::ChildProcess&) {
          const auto worker = worker_pid(addr, 1);
          const auto loaders = worker ? children_of(*worker, "loader") : std::vector<pid_t>{};
          return loaders.empty() ? std::nullopt : std::optional<pid_t>(loaders.front());
        });
    CHECK_THAT(out, Catch::Contains("\"restarts\":0"));
    CHECK_THAT(f.log("loader", "worker1"), Catch::Contains("restarting it at batch"));
    CHECK(differing_records(f.checkpoints("reference"), f.checkpoints("loader")) == 0);
  }
  SECTION(
      "coordinator: the launcher restarts it, it replays its journal and the workers reattach") {
    const std::string out =
        run_and_kill(f, "coordinator", sets, [](const std::string&, test::ChildProcess& run) {
          std::smatch m;
          const std::string text = run.output();
          return std::regex_search(text, m, std::regex(R"(started coordinator \(pid (\d+)\))"))
                     ? std::optional<pid_t>(std::stoi(m[1].str()))
                     : std::nullopt;
        });
    CHECK_THAT(out, Catch::Contains("\"restarts\":1"));
    CHECK_THAT(f.log("coordinator", "worker0"), Catch::Contains("reattached"));
    CHECK(differing_records(f.checkpoints("reference"), f.checkpoints("coordinator")) == 0);
  }
}

TEST_CASE("harvest run: SIGTERM takes a final checkpoint on every rank and exits 0",
          "[worker][run]") {
  RunFixture f;
  const std::string addr = address();
  const std::vector<std::string> sets{"train.steps=100000", "checkpoint.every_steps=0"};
  test::ChildProcess run(f.argv("stopped", addr, sets), (f.dir() / "stopped.log").string());
  const Deadline deadline(60s);
  // Running, a few steps in.
  auto stepped = [&] {
    const auto reply = coord::query_status(addr, {}, 500ms);
    return reply && (*reply)->body().getStatusReply().getStep() >= 3;
  };
  while (!stepped() && !deadline.expired() && run.running()) std::this_thread::sleep_for(20ms);
  INFO(run.output() << f.log("stopped", "coordinator") << f.log("stopped", "worker0")
                    << f.log("stopped", "worker1"));
  REQUIRE(run.running());
  // `harvest checkpoint` asks the running job for a checkpoint and returns once it is committed.
  const auto requested =
      test::run(f.exe() + " checkpoint --coordinator " + addr + " --json --timeout 60");
  INFO(requested.output);
  REQUIRE(requested.exit_code == 0);
  const std::smatch got = [&] {
    std::smatch m;
    std::regex_search(requested.output, m, std::regex(R"re("step":(\d+))re"));
    return m;
  }();
  REQUIRE(got.size() == 2);
  const int64_t requested_step = std::stoll(got[1].str());
  CHECK(requested_step >= 3);
  for (const char* rank : {"worker0", "worker1"})
    CHECK_THAT(f.log("stopped", rank),
               Catch::Contains("saving step " + std::to_string(requested_step) +
                               " as requested through the coordinator"));
  run.kill(SIGTERM);
  const auto status = run.wait(60s);
  REQUIRE(status);
  CHECK(*status == 0);
  CHECK_THAT(run.output(), Catch::Contains("stopped by SIGTERM"));
  const int64_t step = latest_step(f.checkpoints("stopped"));
  CHECK(step >= 3);
  const auto verify = test::run(f.exe() + " ckpt verify " + f.checkpoints("stopped").string());
  INFO(verify.output);
  CHECK(verify.exit_code == 0);
  CHECK_THAT(f.log("stopped", "worker1"), Catch::Contains("leaving: stopped by SIGTERM"));
  CHECK(step > requested_step);
  // The ranks left cleanly: the coordinator ended no generation on their account.
  CHECK_THAT(f.log("stopped", "coordinator"), !Catch::Contains("aborted"));

  // The next run of the same folder resumes from the final checkpoint.
  const auto resumed =
      test::run(f.command("stopped", address(), {"train.steps=" + std::to_string(step + 2)}));
  INFO(resumed.output);
  CHECK(resumed.exit_code == 0);
  CHECK_THAT(resumed.output, Catch::Contains("\"checkpoint_step\":" + std::to_string(step + 2)));
  CHECK_THAT(f.log("stopped", "worker0"),
             Catch::Contains("training from step " + std::to_string(step)));
}

TEST_CASE("harvest run: a config that cannot train exits 2 naming the key", "[worker][run]") {
  const auto no_vocab = test::run(std::string(HARVEST_EXE) +
                                  " run --set dist.world_size=2 --set data.train_manifest=x");
  CHECK(no_vocab.exit_code == 2);
  CHECK_THAT(no_vocab.output, Catch::Contains("model.vocab: required"));
  const auto nccl = test::run(
      std::string(HARVEST_EXE) +
      " worker --set data.train_manifest=x --set model.vocab=y --set dist.backend=inproc");
  CHECK(nccl.exit_code == 2);
  CHECK_THAT(nccl.output, Catch::Contains("dist.backend"));
  // NCCL needs the workers on GPUs: refused before any child starts.
  const auto nccl_cpu = test::run("CUDA_VISIBLE_DEVICES= " + std::string(HARVEST_EXE) +
                                  " run --set dist.world_size=2 --set data.train_manifest=x "
                                  "--set model.vocab=y --set dist.backend=nccl");
  CHECK(nccl_cpu.exit_code == 2);
  CHECK_THAT(nccl_cpu.output, Catch::Contains("dist.backend = nccl needs a CUDA device"));
}

TEST_CASE(
    "harvest run: loaders placed by the coordinator feed the workers and a SIGKILLed one is "
    "replaced without changing a bit",
    "[worker][run]") {
  RunFixture f;
  const std::vector<std::string> sets{"train.steps=60", "checkpoint.every_steps=10",
                                      "data.loaders_per_worker=1"};
  const auto reference = test::run(f.command("reference", address(), sets));
  INFO(reference.output);
  REQUIRE(reference.exit_code == 0);

  std::vector<std::string> placed = sets;
  placed.push_back("data.loader_placement=coordinator");
  const std::string out = run_and_kill(
      f, "placed", placed,
      [](const std::string& addr, test::ChildProcess&) { return loader_pid(addr); }, 90s);
  // The launcher started the loaders (no worker did) and restarted the killed one; the
  // coordinator dealt the replacement to the worker that lost its loader.
  const std::string workers = f.log("placed", "worker0") + f.log("placed", "worker1");
  INFO(workers);
  CHECK_THAT(out, Catch::Contains("started loader1") && Catch::Contains("\"restarts\":1"));
  CHECK_THAT(workers, Catch::Contains("placed by the coordinator build batches from 0") &&
                          Catch::Contains("the coordinator's shard plan changed"));
  // Batches do not depend on who decodes them: the same final state as worker-started loaders.
  CHECK(differing_records(f.checkpoints("reference"), f.checkpoints("placed")) == 0);
}

TEST_CASE("harvest run: an eval process evaluates committed checkpoints the coordinator hands it",
          "[worker][run]") {
  RunFixture f;
  const auto result = test::run(f.command(
      "evaluated", address(),
      {"train.steps=6", "checkpoint.every_steps=3", "eval.every_steps=3",
       "eval.manifest=" + (f.dir() / "data" / "test.jsonl").string()}));
  const std::string coordinator = f.log("evaluated", "coordinator");
  const std::string evaluator = f.log("evaluated", "eval0");
  INFO(result.output << coordinator << evaluator);
  REQUIRE(result.exit_code == 0);
  // The launcher waited for the eval process too, which ended by itself after the last step.
  CHECK_THAT(result.output, Catch::Contains("eval0 finished") &&
                                Catch::Contains("\"checkpoint_step\":6"));
  // Each committed multiple of eval.every_steps went out as a job and came back with metrics.
  for (const char* step : {"3", "6"}) {
    CHECK_THAT(coordinator, Catch::Contains(std::string("eval of step ") + step + " handed to member"));
    CHECK_THAT(coordinator, Catch::Contains(std::string("eval of step ") + step + " by member") &&
                                Catch::Contains("retrieval.t2v_r1="));
  }
  CHECK_THAT(evaluator, Catch::Contains("step-000000000003: 1 evaluation(s) run, 0 failed") &&
                            Catch::Contains("step-000000000006: 1 evaluation(s) run, 0 failed"));
  // Written as `harvest sweep` writes them: a later sweep finds both done.
  const auto sweep = test::run(f.exe() + " sweep " + (f.dir() / "evaluated").string());
  INFO(sweep.output);
  CHECK(sweep.exit_code == 0);
  CHECK_THAT(sweep.output, Catch::Contains("0 evaluation(s) run, 2 already done"));
}

TEST_CASE("harvest run: garbage sent to a worker's loader endpoint is ignored and training ends",
          "[worker][run]") {
  RunFixture f;
  const std::vector<std::string> sets{"train.steps=20", "checkpoint.every_steps=10",
                                      "data.loaders_per_worker=1", "dist.timeout_s=60",
                                      "data.loader_placement=coordinator"};
  test::ChildProcess run(f.argv("garbage", address(), sets), (f.dir() / "garbage.log").string());
  // The worker's data endpoint, from its log.
  const std::regex listening("listening for coordinator-placed loaders at (tcp://[0-9.]+:[0-9]+)");
  std::smatch m;
  std::string endpoint;
  const Deadline deadline(60s);
  while (endpoint.empty() && !deadline.expired() && run.running()) {
    const std::string log = f.log("garbage", "worker0");
    if (std::regex_search(log, m, listening)) endpoint = m[1];
    std::this_thread::sleep_for(20ms);
  }
  INFO(run.output() << f.log("garbage", "worker0"));
  REQUIRE(!endpoint.empty());

  coord::ZmqContext ctx;
  coord::ZmqSocket rogue(ctx, ZMQ_DEALER, "rogue");
  rogue.set(ZMQ_LINGER, 0);
  rogue.connect(endpoint);
  auto control = [](data::LoaderControlMsg::Kind kind, uint64_t member) {
    data::LoaderControlMsg msg;
    msg.kind = kind;
    msg.member_id = member;
    const data::ZmqMessage part = data::encode_control(msg);
    return std::string(reinterpret_cast<const char*>(part.data()), part.size());
  };
  // Well-formed control messages a loader would not send (or from a member this worker was not
  // dealt), then random bytes in 1 to 4 parts: a fake batch header among them.
  rogue.send({control(data::LoaderControlMsg::Kind::Hello, 424242)});
  rogue.send({control(data::LoaderControlMsg::Kind::Start, 1)});
  rogue.send({control(data::LoaderControlMsg::Kind::Hello, 0)});
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    coord::Multipart parts(1 + rng() % 4);
    for (auto& p : parts) {
      p.resize(rng() % 600);
      for (auto& c : p) c = static_cast<char>(rng());
    }
    rogue.send(parts);
  }
  const auto status = run.wait(120s);
  INFO(f.log("garbage", "worker1") << f.log("garbage", "coordinator"));
  REQUIRE(status);
  CHECK(*status == 0);
  CHECK_THAT(run.output(), Catch::Contains("\"checkpoint_step\":20") && Catch::Contains("\"restarts\":0"));
  CHECK_THAT(f.log("garbage", "worker0"),
             Catch::Contains("not a placed loader's hello; ignored") && Catch::Contains("; ignored"));
}

TEST_CASE("harvest worker: with coordinator-placed loaders and none started it stops naming what to start",
          "[worker][run]") {
  RunFixture f;
  const std::string addr = address();
  // `harvest run`'s flags, used for the separate roles: --set list after the subcommand.
  std::vector<std::string> common;
  const auto all = f.argv("noloader", addr,
                          {"dist.world_size=1", "data.loader_placement=coordinator",
                           "data.loader_timeout_s=2", "train.steps=5"});
  common.assign(all.begin() + 2, all.end());
  std::vector<std::string> coordinator{f.exe(), "coordinator"};
  coordinator.insert(coordinator.end(), common.begin(), common.end());
  test::ChildProcess coord(coordinator, (f.dir() / "noloader-coordinator.log").string());
  std::vector<std::string> worker{f.exe(), "worker", "--rank", "0"};
  worker.insert(worker.end(), common.begin(), common.end());
  test::ChildProcess w(worker, (f.dir() / "noloader-worker.log").string());
  const auto status = w.wait(90s);
  INFO(w.output() << coord.output());
  REQUIRE(status);
  CHECK(*status == 1);
  CHECK_THAT(w.output(), Catch::Contains("no loader feeds this worker") &&
                             Catch::Contains("data.loader_timeout_s") &&
                             Catch::Contains("harvest loader --config X"));
}

TEST_CASE(
    "harvest worker: a spare evaluates checkpoints and cancels when it takes a rank; a spare leaves "
    "when training is finished",
    "[worker][run]") {
  RunFixture f;
  // A long eval set (600 names for one clip), so an evaluation is in progress when a rank comes.
  const fs::path evalset = f.dir() / "evalset";
  fs::create_directories(evalset);
  {
    std::ofstream manifest(evalset / "eval.jsonl");
    for (int i = 0; i < 600; ++i) {
      const std::string name = "clip" + std::to_string(i) + ".mp4";
      fs::create_symlink(f.dir() / "data" / "videos" / "000000.mp4", evalset / name);
      manifest << "{\"video\":\"" << name << "\",\"caption\":\"clip " << i << "\"}\n";
    }
  }
  const std::string addr = address();
  const auto all = f.argv("spare", addr,
                          {"dist.world_size=1", "train.steps=30", "checkpoint.every_steps=5",
                           "eval.every_steps=10", "eval.batch_size=1", "dist.timeout_s=60",
                           "eval.manifest=" + (evalset / "eval.jsonl").string(),
                           "coordinator.exit_when_done=true"});
  const std::vector<std::string> common(all.begin() + 2, all.end());
  auto command = [&](std::vector<std::string> head) {
    head.insert(head.end(), common.begin(), common.end());
    return head;
  };
  const std::string logs = (f.dir() / "spare-").string();
  test::ChildProcess coordinator(command({f.exe(), "coordinator"}), logs + "coordinator.log");
  test::ChildProcess first(command({f.exe(), "worker", "--rank", "0"}), logs + "first.log");
  const Deadline deadline(120s);
  while (!worker_pid(addr, 0) && !deadline.expired()) std::this_thread::sleep_for(50ms);
  // A second worker: no place in the running generation of one, so a spare.
  test::ChildProcess spare(command({f.exe(), "worker"}), logs + "spare.log");
  while (spare.output().find("spare: evaluating") == std::string::npos && !deadline.expired() &&
         spare.running())
    std::this_thread::sleep_for(20ms);
  INFO(coordinator.output() << first.output() << spare.output());
  REQUIRE_THAT(spare.output(), Catch::Contains("spare: evaluating"));
  // `harvest status` shows the spare evaluating, with the step of the checkpoint it evaluates.
  const auto spare_state = [&]() -> std::optional<std::pair<proto::MemberState, uint64_t>> {
    const auto reply = coord::query_status(addr, {}, 1000ms);
    if (!reply) return std::nullopt;
    for (const auto m : (*reply)->body().getStatusReply().getMembers())
      if (m.getRole() == proto::Role::WORKER && m.getRank() < 0 && m.getState() != proto::MemberState::LOST)
        return std::make_pair(m.getState(), m.getStep());
    return std::nullopt;
  };
  auto shown = spare_state();
  while ((!shown || shown->first != proto::MemberState::EVALUATING) && !deadline.expired()) {
    std::this_thread::sleep_for(20ms);
    shown = spare_state();
  }
  REQUIRE(shown);
  CHECK(shown->first == proto::MemberState::EVALUATING);
  CHECK((shown->second > 0 && shown->second % 10 == 0));  // eval.every_steps=10

  // The ranked worker dies mid-evaluation: the spare cancels, takes rank 0 and trains to the end.
  first.kill(SIGKILL);
  while (spare.output().find("generation 2: rank 0 of 1") == std::string::npos &&
         !deadline.expired() && spare.running())
    std::this_thread::sleep_for(20ms);
  REQUIRE_THAT(spare.output(), Catch::Contains("generation 2: rank 0 of 1"));
  // A replacement joins the running generation: now it is the spare, and takes the queued job.
  test::ChildProcess second(command({f.exe(), "worker"}), logs + "second.log");

  const auto spare_exit = spare.wait(180s);
  const auto second_exit = second.wait(120s);
  const auto coordinator_exit = coordinator.wait(30s);
  INFO(second.output());
  CHECK(spare_exit == std::optional<int>(0));
  CHECK_THAT(spare.output(), Catch::Contains("cancelled: this worker took a rank") &&
                                 Catch::Contains("training from step"));
  const std::regex requeued(R"(was given a rank in generation 2 during its evaluation of step (\d+): queued again)");
  std::smatch m;
  const std::string log = coordinator.output();
  REQUIRE(std::regex_search(log, m, requeued));
  const std::string step = m[1];
  // The requeued job went to the new spare (ahead of later ones) and came back with metrics; once
  // training was finished the spare evaluated what was still queued (the final step last), then
  // was told to leave.
  CHECK_THAT(log, Catch::Contains("eval of step " + step + " handed to spare worker 3") &&
                      Catch::Contains("eval of step " + step + " by member 3: retrieval.t2v_r1=") &&
                      Catch::Contains("eval of step 30 by member 3: retrieval.t2v_r1=") &&
                      Catch::Contains("spare worker 3 told to leave"));
  CHECK(second_exit == std::optional<int>(0));
  CHECK_THAT(second.output(), Catch::Contains("spare: evaluated") &&
                                  Catch::Contains("training finished at step 30"));
  // Every member left, so the coordinator ended by itself.
  CHECK(coordinator_exit == std::optional<int>(0));
  CHECK(latest_step(f.dir() / "spare" / "checkpoints") == 30);
  // How long the evaluation held the device once the rank came: assign to cancelled, and assign
  // to the first step of the new generation (from the spare's log clock).
  const int64_t assigned = log_ms(spare.output(), "assigned rank 0 of 1 in generation 2");
  const int64_t cancelled = log_ms(spare.output(), "cancelled: this worker took a rank");
  const int64_t stepped = log_ms(spare.output(), "generation 2: first step done");
  REQUIRE((assigned >= 0 && cancelled >= 0 && stepped >= 0));
  const auto after = [](int64_t from, int64_t to) { return (to - from + 86400000) % 86400000; };
  CHECK(after(assigned, cancelled) <= after(assigned, stepped));
  WARN("spare given a rank mid-evaluation: cancelled after " << after(assigned, cancelled)
                                                             << " ms, first step after "
                                                             << after(assigned, stepped) << " ms");
}
