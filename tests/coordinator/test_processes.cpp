// Real processes over loopback: a coordinator and fake workers/loaders (coordinator_test_node).
#include <catch2/catch.hpp>

#include <cstdio>
#include <set>
#include <sstream>

#include "cluster.hpp"

using namespace harvest;
using namespace harvest::test;
using namespace std::chrono_literals;

namespace {

// "rendezvous <gen> ..." lines of a peer's output, as (rank, digest) for generation `g`.
std::set<std::string> backend_digests(const std::string& output, uint64_t g) {
  std::set<std::string> digests;
  std::istringstream in(output);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string kind, digest;
    uint64_t gen = 0;
    int rank = 0;
    unsigned world = 0;
    if (words >> kind >> gen >> rank >> world >> digest && kind == "rendezvous" && gen == g) digests.insert(digest);
  }
  return digests;
}

std::string last_line_starting(const std::string& output, const std::string& prefix) {
  std::istringstream in(output);
  std::string line, last;
  while (std::getline(in, line))
    if (line.rfind(prefix, 0) == 0) last = line;
  return last;
}

proto::MemberState state_of_pid(proto::StatusReply::Reader s, pid_t pid) {
  for (const auto m : s.getMembers())
    if (m.getPid() == static_cast<uint32_t>(pid)) return m.getState();
  return proto::MemberState::REGISTERED;
}

const std::vector<std::string> kElastic{"dist.world_size=3", "dist.min_workers=2", "dist.max_workers=3",
                                        "coordinator.rendezvous_wait_s=0.3"};

}  // namespace

TEST_CASE("three workers and a loader form generation 1 around one backend id", "[coordinator]") {
  Cluster cluster(kElastic);
  cluster.start_coordinator();
  for (const char* name : {"w0", "w1", "w2"}) cluster.start_peer(name, {"--role", "worker"});
  cluster.start_peer("l0", {"--role", "loader"});
  const auto formed = cluster.wait_for([](auto s) { return workers_running(s, 3, 1); }, 10s);
  INFO(cluster.logs());
  REQUIRE(formed);

  SECTION("every rank received the same 128-byte id that rank 0 offered, and distinct ranks") {
    std::set<std::string> all;
    for (const char* name : {"w0", "w1", "w2"}) {
      const auto d = backend_digests(cluster.peer(name).output(), 1);
      REQUIRE(d.size() == 1);
      all.insert(*d.begin());
    }
    CHECK(all.size() == 1);
    auto s = cluster.status();
    REQUIRE(s);
    std::set<int> ranks;
    for (const auto m : (*s)->body().getStatusReply().getMembers())
      if (m.getRole() == proto::Role::WORKER) ranks.insert(m.getRank());
    CHECK(ranks == std::set<int>{0, 1, 2});
  }
  SECTION("the loader got a shard plan naming its worker") {
    const auto ok = cluster.wait_for(
        [](auto s) { return count_members(s, proto::Role::LOADER, proto::MemberState::RUNNING) == 1; }, 5s);
    CHECK(ok);
    CHECK(cluster.peer("l0").output().find("plan 1 0 1") != std::string::npos);
  }
}

TEST_CASE("SIGKILL of a worker is detected in under a second and survivors re-form", "[coordinator]") {
  Cluster cluster(kElastic);
  cluster.start_coordinator();
  for (const char* name : {"w0", "w1", "w2"}) cluster.start_peer(name, {"--role", "worker"});
  REQUIRE(cluster.wait_for([](auto s) { return workers_running(s, 3, 1); }, 10s));

  const pid_t victim = cluster.peer("w1").pid();
  const Stopwatch since_kill;
  cluster.peer("w1").kill(SIGKILL);
  const auto detected = cluster.wait_for(
      [victim](auto s) { return state_of_pid(s, victim) == proto::MemberState::LOST && s.getGeneration() >= 2; },
      5s);
  const double detect_ms = since_kill.seconds() * 1000.0;
  INFO(cluster.logs());
  REQUIRE(detected);
  std::printf("[measure] worker SIGKILL -> lost + generation 2 announced: %.0f ms\n", detect_ms);
  CHECK(detect_ms < 1000.0);

  SECTION("with no replacement, the two survivors run generation 2 (dist.min_workers = 2)") {
    const auto recovered = cluster.wait_for([](auto s) { return workers_running(s, 2, 2); }, 5s);
    REQUIRE(recovered);
    std::printf("[measure] worker SIGKILL -> 2 survivors running generation 2: %.0f ms\n",
                since_kill.seconds() * 1000.0);
    // Survivors were told to abort before the new generation formed.
    CHECK(cluster.peer("w0").output().find("abort 2 ") != std::string::npos);
    CHECK(cluster.peer("w2").output().find("abort 2 ") != std::string::npos);
  }
  SECTION("a replacement that joins in time makes generation 2 full size again") {
    cluster.start_peer("w3", {"--role", "worker"});
    const auto recovered = cluster.wait_for(
        [](auto s) { return s.getGeneration() >= 2 && workers_running(s, 3, s.getGeneration()); }, 10s);
    REQUIRE(recovered);
    std::printf("[measure] worker SIGKILL -> 3 workers (with replacement) running again: %.0f ms\n",
                since_kill.seconds() * 1000.0);
  }
}

TEST_CASE("a hung worker (heartbeats, no step progress) is caught by the step deadline", "[coordinator]") {
  std::vector<std::string> sets = kElastic;
  sets.push_back("coordinator.step_deadline_s=0.5");
  Cluster cluster(sets);
  cluster.start_coordinator();
  cluster.start_peer("w0", {"--role", "worker"});
  cluster.start_peer("w1", {"--role", "worker"});
  cluster.start_peer("hung", {"--role", "worker", "--hang-after", "10"});
  const auto lost = cluster.wait_for(
      [&](auto s) { return state_of_pid(s, cluster.peer("hung").pid()) == proto::MemberState::LOST; }, 10s);
  INFO(cluster.logs());
  REQUIRE(lost);
  // The hung process was told to shut down; the others run a new generation without it.
  CHECK(cluster.peer("hung").wait(3s) == std::optional<int>(3));
  CHECK(cluster.wait_for([](auto s) { return s.getGeneration() >= 2 && workers_running(s, 2, s.getGeneration()); },
                         5s));
}

TEST_CASE("two-phase checkpoint: committed only when every rank acked, survives in status", "[coordinator]") {
  Cluster cluster({"dist.world_size=2"});
  cluster.start_coordinator();
  cluster.start_peer("w0", {"--role", "worker", "--ckpt-every", "20", "--step-ms", "10"});
  cluster.start_peer("w1", {"--role", "worker", "--ckpt-every", "20", "--step-ms", "10"});
  const auto committed = cluster.wait_for([](auto s) { return s.getLastCheckpointStep() >= 40; }, 10s);
  INFO(cluster.logs());
  REQUIRE(committed);
  CHECK(cluster.peer("w0").output().find("commit 20") != std::string::npos);
  CHECK(cluster.peer("w1").output().find("commit 20") != std::string::npos);
}

TEST_CASE("when every rank left cleanly the generation ends and new workers form the next", "[coordinator]") {
  Cluster cluster({"dist.world_size=2"});
  cluster.start_coordinator();
  for (const char* w : {"w0", "w1"}) cluster.start_peer(w, {"--role", "worker", "--leave-after", "20", "--leave-clean"});
  for (const char* w : {"w0", "w1"}) REQUIRE(cluster.peer(w).wait(10s) == std::optional<int>(0));
  // Workers of a later run (a requeued job) form generation 2 instead of waiting as spares.
  cluster.start_peer("w2", {"--role", "worker"});
  cluster.start_peer("w3", {"--role", "worker"});
  const bool formed = cluster.wait_for([](auto s) { return workers_running(s, 2, 2); }, 10s).has_value();
  INFO(cluster.logs());
  REQUIRE(formed);
  CHECK(cluster.logs().find("generation 1 ended: every rank left cleanly") != std::string::npos);
  CHECK(cluster.logs().find("aborted") == std::string::npos);
}

TEST_CASE("checkpointRequest is refused without a generation and otherwise returns the commit every rank acked",
          "[coordinator]") {
  Cluster cluster({"dist.world_size=2"});
  cluster.start_coordinator();
  // No worker yet: nothing to checkpoint, said at once.
  CHECK_THROWS_WITH(coord::request_checkpoint(cluster.address(), {}, 5s),
                    Catch::Contains("no generation is training"));
  cluster.start_peer("w0", {"--role", "worker"});
  cluster.start_peer("w1", {"--role", "worker"});
  REQUIRE(cluster.wait_for([](auto s) { return workers_running(s, 2, 1); }, 10s));
  const auto commit = coord::request_checkpoint(cluster.address(), {}, 10s);
  INFO(cluster.logs());
  REQUIRE(commit.has_value());
  CHECK((*commit)->body().getCheckpointCommit().getStep() == 100000);
  CHECK((*commit)->body().getCheckpointCommit().getGeneration() == 1);
  for (const char* w : {"w0", "w1"}) CHECK(cluster.peer(w).output().find("checkpoint-request 1") != std::string::npos);
  // A second request waits for a later commit than the first.
  const auto second = coord::request_checkpoint(cluster.address(), {}, 10s);
  REQUIRE(second.has_value());
  CHECK((*second)->body().getCheckpointCommit().getStep() == 200000);
}

TEST_CASE("coordinator SIGKILL + restart replays the journal and live peers reattach", "[coordinator]") {
  Cluster cluster(
      {"dist.world_size=3", "dist.min_workers=2", "coordinator.reattach_grace_s=3",
       "coordinator.rendezvous_wait_s=0.3"});
  cluster.start_coordinator();
  for (const char* name : {"w0", "w1", "w2"}) cluster.start_peer(name, {"--role", "worker", "--ckpt-every", "50"});
  cluster.start_peer("l0", {"--role", "loader"});
  REQUIRE(cluster.wait_for([](auto s) { return workers_running(s, 3, 1) && s.getLastCheckpointStep() >= 50; }, 15s));
  auto before = cluster.status();
  REQUIRE(before);
  std::map<uint32_t, uint64_t> ids_before;  // pid -> member id
  for (const auto m : (*before)->body().getStatusReply().getMembers()) ids_before[m.getPid()] = m.getMemberId();
  const uint64_t incarnation_before = (*before)->body().getStatusReply().getIncarnation();

  cluster.coordinator().kill(SIGKILL);
  REQUIRE(cluster.coordinator().wait(5s));
  std::this_thread::sleep_for(700ms);  // peers notice the silence and start reconnecting
  const Stopwatch since_restart;
  cluster.start_coordinator();
  const auto reattached = cluster.wait_for(
      [&](auto s) {
        size_t back = 0;
        for (const auto m : s.getMembers())
          if (m.getState() == proto::MemberState::RUNNING && ids_before[m.getPid()] == m.getMemberId()) ++back;
        return s.getIncarnation() != incarnation_before && back == 4;
      },
      10s);
  INFO(cluster.logs());
  REQUIRE(reattached);
  std::printf("[measure] coordinator restart -> all 4 peers reattached: %.0f ms\n", since_restart.seconds() * 1000.0);
  auto after = cluster.status();
  REQUIRE(after);
  const auto s = (*after)->body().getStatusReply();
  SECTION("the job is the same: generation 1, same ranks, last commit kept, no new members") {
    CHECK(s.getGeneration() == 1);
    CHECK(s.getWorldSize() == 3);
    CHECK(s.getLastCheckpointStep() >= 50);
    CHECK(s.getMembers().size() == 4);
  }
  SECTION("failure detection still works after the restart") {
    cluster.peer("w2").kill(SIGKILL);
    CHECK(cluster.wait_for([](auto st) { return st.getGeneration() == 2 && workers_running(st, 2, 2); }, 5s));
  }
}

TEST_CASE("a clean leave ends a member without aborting its group; an unclean one aborts", "[coordinator]") {
  for (const bool clean : {true, false}) {
    INFO((clean ? "clean leave" : "unclean leave"));
    Cluster cluster({"dist.world_size=2", "dist.min_workers=1", "coordinator.rendezvous_wait_s=0.3"});
    cluster.start_coordinator();
    cluster.start_peer("w0", {"--role", "worker"});
    std::vector<std::string> leaver{"--role", "worker", "--leave-after", "20"};
    if (clean) leaver.push_back("--leave-clean");
    cluster.start_peer("w1", leaver);
    REQUIRE(cluster.peer("w1").wait(10s) == std::optional<int>(0));
    const pid_t w1 = cluster.peer("w1").pid();
    const proto::MemberState expected = clean ? proto::MemberState::LEFT : proto::MemberState::LOST;
    const bool seen = cluster.wait_for([&](auto s) { return state_of_pid(s, w1) == expected; }, 5s).has_value();
    INFO(cluster.logs());
    REQUIRE(seen);
    std::this_thread::sleep_for(500ms);  // time for an abort to arrive, if one were sent
    const bool aborted = cluster.peer("w0").output().find("\nabort ") != std::string::npos;
    CHECK(aborted == !clean);
    if (clean) CHECK(cluster.logs().find("generation 1 aborted") == std::string::npos);
  }
}

TEST_CASE("a peer that has not read its assign yet leaves on its connection with member id 0",
          "[coordinator]") {
  // A sweeper's shutdown can reach a late worker before membership's assign: the worker's leave
  // then names member 0. The coordinator knows it by its connection.
  Cluster cluster({"dist.world_size=2"});
  cluster.start_coordinator();
  coord::ZmqContext ctx;
  coord::ZmqSocket peer(ctx, ZMQ_DEALER, cluster.address());
  peer.connect(cluster.address());
  coord::OutMessage reg;
  auto r = reg.body().initRegister();
  r.setRole(proto::Role::WORKER);
  r.setHost("raw");
  r.setPid(424242);
  r.setDevice("cpu");
  r.setDesiredRank(-1);
  coord::OutMessage leave;
  leave.body().initLeave().setReason("told to leave before the assign came");
  leave.body().getLeave().setClean(true);
  const Deadline sent(5s);
  while (!peer.send({reg.bytes()}) && !sent.expired()) std::this_thread::sleep_for(10ms);
  REQUIRE(peer.send({leave.bytes()}));  // without reading the assign: memberId stays 0
  // LEFT, not LOST: a heartbeat timeout (this peer never heartbeats) would say lost.
  const bool left = cluster.wait_for([](auto s) { return state_of_pid(s, 424242) == proto::MemberState::LEFT; },
                                     5s).has_value();
  INFO(cluster.logs());
  CHECK(left);
}

TEST_CASE("SIGKILL of a loader: detected, its workers re-planned, the generation untouched", "[coordinator]") {
  Cluster cluster({"dist.world_size=2"});
  cluster.start_coordinator();
  cluster.start_peer("w0", {"--role", "worker"});
  cluster.start_peer("w1", {"--role", "worker"});
  cluster.start_peer("l0", {"--role", "loader"});
  cluster.start_peer("l1", {"--role", "loader"});
  REQUIRE(cluster.wait_for(
      [](auto s) {
        return workers_running(s, 2, 1) && count_members(s, proto::Role::LOADER, proto::MemberState::RUNNING) == 2;
      },
      10s));
  const std::string before = last_line_starting(cluster.peer("l0").output(), "plan ");
  CHECK((before == "plan 1 0 1" || before == "plan 1 1 1"));  // one loader per rank, either rank
  const Stopwatch since_kill;
  cluster.peer("l1").kill(SIGKILL);
  const auto lost = cluster.wait_for(
      [](auto s) { return count_members(s, proto::Role::LOADER, proto::MemberState::LOST) == 1; }, 5s);
  INFO(cluster.logs());
  REQUIRE(lost);
  std::printf("[measure] loader SIGKILL -> lost: %.0f ms\n", since_kill.seconds() * 1000.0);
  CHECK(since_kill.seconds() < 1.0);
  // The coordinator re-plans; the surviving loader keeps its worker (sticky), the other worker
  // has none until a replacement registers.
  const auto replanned = [&] {
    const std::string log = cluster.coordinator().output();
    const size_t lost_at = log.find(") lost:");
    return lost_at != std::string::npos &&
           log.find("shard plan for generation 1: 1 loader(s)", lost_at) != std::string::npos;
  };
  const Deadline deadline(2s);
  while (!replanned() && !deadline.expired()) std::this_thread::sleep_for(20ms);
  CHECK(replanned());
  CHECK(last_line_starting(cluster.peer("l0").output(), "plan ") == before);
  // A replacement loader is planned in, to the worker without one; the workers never left
  // generation 1.
  cluster.start_peer("l2", {"--role", "loader"});
  CHECK(cluster.wait_for(
      [](auto s) {
        return workers_running(s, 2, 1) && count_members(s, proto::Role::LOADER, proto::MemberState::RUNNING) == 2;
      },
      5s));
  const Deadline planned(2s);
  while (last_line_starting(cluster.peer("l2").output(), "plan ").empty() && !planned.expired())
    std::this_thread::sleep_for(20ms);
  CHECK(last_line_starting(cluster.peer("l2").output(), "plan ") ==
        (before == "plan 1 0 1" ? "plan 1 1 1" : "plan 1 0 1"));
}

TEST_CASE("the scheduler deals loaders sticky and balanced: a lost loader moves nobody else",
          "[coordinator]") {
  Cluster cluster({"dist.world_size=2"});
  cluster.start_coordinator();
  for (const char* name : {"w0", "w1"}) cluster.start_peer(name, {"--role", "worker"});
  REQUIRE(cluster.wait_for([](auto s) { return workers_running(s, 2, 1); }, 10s));
  for (const char* name : {"l0", "l1", "l2"}) {
    cluster.start_peer(name, {"--role", "loader"});
    // One at a time, so member ids (and the dealing order) follow the names.
    const size_t want = static_cast<size_t>(name[1] - '0') + 1;
    REQUIRE(cluster.wait_for(
        [want](auto s) {
          return count_members(s, proto::Role::LOADER, proto::MemberState::RUNNING) == want;
        },
        10s));
  }
  // "plan <generation> <rank> <loaders of that rank>"
  auto plan_of = [&](const char* name) { return last_line_starting(cluster.peer(name).output(), "plan "); };
  INFO(cluster.logs());
  // Balanced: two loaders on one rank, one on the other; each new one went to the rank with fewest.
  CHECK(plan_of("l0") == "plan 1 0 2");
  CHECK(plan_of("l1") == "plan 1 1 1");
  CHECK(plan_of("l2") == "plan 1 0 2");

  cluster.peer("l0").kill(SIGKILL);
  REQUIRE(cluster.wait_for(
      [](auto s) { return count_members(s, proto::Role::LOADER, proto::MemberState::RUNNING) == 2; }, 5s));
  REQUIRE(cluster.wait_for([&](auto) { return plan_of("l2") == "plan 1 0 1"; }, 5s));
  CHECK(plan_of("l1") == "plan 1 1 1");  // kept its rank

  cluster.start_peer("l3", {"--role", "loader"});
  REQUIRE(cluster.wait_for(
      [](auto s) { return count_members(s, proto::Role::LOADER, proto::MemberState::RUNNING) == 3; }, 10s));
  REQUIRE(cluster.wait_for([&](auto) { return !plan_of("l3").empty(); }, 5s));
  CHECK(plan_of("l3") == "plan 1 0 2");  // ties go to the lowest rank
  CHECK(plan_of("l2") == "plan 1 0 2");
  CHECK(plan_of("l1") == "plan 1 1 1");
}

TEST_CASE("the sweeper hands committed checkpoints to eval members and requeues a lost member's job",
          "[coordinator]") {
  Cluster cluster({"dist.world_size=2", "checkpoint.every_steps=20", "eval.every_steps=40"});
  cluster.start_coordinator();
  // An eval member that takes a job and never answers, then dies.
  cluster.start_peer("e0", {"--role", "eval", "--eval-hold"});
  REQUIRE(cluster.wait_for([](auto s) { return count_members(s, proto::Role::EVAL, proto::MemberState::REGISTERED) == 1; },
                           10s));
  for (const char* w : {"w0", "w1"})
    cluster.start_peer(w, {"--role", "worker", "--ckpt-every", "20", "--step-ms", "10"});
  const Deadline deadline(10s);
  while (cluster.peer("e0").output().find("evaljob 1 ") == std::string::npos && !deadline.expired())
    std::this_thread::sleep_for(20ms);
  INFO(cluster.logs());
  // Only multiples of eval.every_steps: step 20 was committed but is not a job.
  REQUIRE_THAT(cluster.peer("e0").output(), Catch::Contains("evaljob 1 ") && Catch::Contains("step_40"));
  CHECK(cluster.peer("e0").output().find("evaljob 2") == std::string::npos);  // one job at a time
  cluster.peer("e0").kill(SIGKILL);
  cluster.start_peer("e1", {"--role", "eval"});
  const Deadline requeued(10s);
  while (cluster.coordinator().output().find("eval of step 40 by member") == std::string::npos && !requeued.expired())
    std::this_thread::sleep_for(20ms);
  // The lost member's job went back to the queue, ahead of those that queued meanwhile, and the
  // new member evaluated it (maybe after a job it got on joining, before the loss was noticed).
  CHECK_THAT(cluster.coordinator().output(), Catch::Contains("lost during its evaluation of step 40: queued again") &&
                                                 Catch::Contains("eval of step 40 by member") &&
                                                 Catch::Contains("t2v_r1=1"));
  const std::string e1 = cluster.peer("e1").output();
  CHECK_THAT(e1, Catch::Contains("evaljob 1 ckpt/step_40"));
  const Deadline more(5s);
  while (cluster.peer("e1").output().find("evaljob 2 ") == std::string::npos && !more.expired())
    std::this_thread::sleep_for(20ms);
  CHECK_THAT(cluster.peer("e1").output(), Catch::Contains("evaljob 2 ") && Catch::Contains("step_80"));
}

TEST_CASE("the sweeper hands jobs to a spare worker and queues them again when it is given a rank",
          "[coordinator]") {
  Cluster cluster({"dist.world_size=2", "checkpoint.every_steps=20", "eval.every_steps=40",
                   "eval.manifest=eval.jsonl"});
  cluster.start_coordinator();
  for (const char* w : {"w0", "w1"})
    cluster.start_peer(w, {"--role", "worker", "--ckpt-every", "20", "--step-ms", "10"});
  REQUIRE(cluster.wait_for([](auto s) { return workers_running(s, 2, 1); }, 10s));
  // A third worker has no place in the running generation: a spare. It takes a job and holds it.
  cluster.start_peer("spare", {"--role", "worker", "--ckpt-every", "20", "--step-ms", "10", "--eval-hold"});
  const Deadline deadline(10s);
  while (cluster.peer("spare").output().find("evaljob 1 ") == std::string::npos && !deadline.expired())
    std::this_thread::sleep_for(20ms);
  INFO(cluster.logs());
  REQUIRE_THAT(cluster.peer("spare").output(), Catch::Contains("evaljob 1 ckpt/step_40"));
  CHECK_THAT(cluster.coordinator().output(), Catch::Contains("eval of step 40 handed to spare worker"));
  // A ranked worker is lost: the spare takes its place, and its job goes back to the queue ...
  cluster.peer("w0").kill(SIGKILL);
  const Deadline requeued(10s);
  while (cluster.coordinator().output().find("was given a rank in generation 2") == std::string::npos &&
         !requeued.expired())
    std::this_thread::sleep_for(20ms);
  CHECK_THAT(cluster.coordinator().output(),
             Catch::Contains("during its evaluation of step 40: queued again"));
  // "assign <member> <rank> <world> <generation>": member 3 is rank 1 of 2 in generation 2 (the
  // coordinator logs the requeue before the assign reaches the spare).
  const Deadline assigned(5s);
  while (cluster.peer("spare").output().find("assign 3 1 2 2") == std::string::npos && !assigned.expired())
    std::this_thread::sleep_for(20ms);
  CHECK_THAT(cluster.peer("spare").output(), Catch::Contains("assign 3 1 2 2"));
  // ... for the next evaluator, here an eval member.
  cluster.start_peer("e0", {"--role", "eval"});
  const Deadline evaluated(10s);
  while (cluster.coordinator().output().find("eval of step 40 by member") == std::string::npos &&
         !evaluated.expired())
    std::this_thread::sleep_for(20ms);
  CHECK_THAT(cluster.peer("e0").output(), Catch::Contains("evaljob 1 ckpt/step_40"));
  CHECK_THAT(cluster.coordinator().output(), Catch::Contains("eval of step 40 by member"));
}

TEST_CASE("training finished: spares evaluate what is queued then are told to leave and so is a late worker",
          "[coordinator]") {
  // The fake worker acks steps 20 and 40 (= train.steps) and leaves cleanly at step 50.
  Cluster cluster({"dist.world_size=1", "train.steps=40", "checkpoint.every_steps=20", "eval.every_steps=20",
                   "eval.manifest=eval.jsonl"});
  cluster.start_coordinator();
  cluster.start_peer("w0", {"--role", "worker", "--ckpt-every", "20", "--step-ms", "20", "--leave-after", "50",
                            "--leave-clean"});
  REQUIRE(cluster.wait_for([](auto s) { return workers_running(s, 1, 1); }, 10s));
  cluster.start_peer("spare", {"--role", "worker"});  // answers each evalJob at once
  const auto spare_exit = cluster.peer("spare").wait(20s);
  INFO(cluster.logs());
  REQUIRE(spare_exit == std::optional<int>(3));  // the fake's exit status on a shutdown
  const std::string spare = cluster.peer("spare").output();
  CHECK_THAT(spare, Catch::Contains("evaljob 1 ckpt/step_20") && Catch::Contains("evaljob 2 ckpt/step_40") &&
                        Catch::Contains("shutdown training finished at step 40"));
  CHECK(spare.find("evaljob 2") < spare.find("shutdown"));  // the final checkpoint first
  CHECK_THAT(cluster.coordinator().output(), Catch::Contains("eval of step 40 by member 2: t2v_r1=2") &&
                                                 Catch::Contains("spare worker 2 told to leave"));
  cluster.start_peer("late", {"--role", "worker"});
  CHECK(cluster.peer("late").wait(10s) == std::optional<int>(3));
  CHECK_THAT(cluster.peer("late").output(), Catch::Contains("shutdown training finished at step 40"));
  // A coordinator restarted on this journal (or a new job on it) knows training is finished.
  cluster.coordinator().kill(SIGKILL);
  cluster.coordinator().wait(5s);
  cluster.start_coordinator();
  cluster.start_peer("after", {"--role", "worker"});
  CHECK(cluster.peer("after").wait(10s) == std::optional<int>(3));
  CHECK_THAT(cluster.peer("after").output(), Catch::Contains("shutdown training finished at step 40"));
}

TEST_CASE("eval.spare_workers = false: a spare worker gets no eval job", "[coordinator]") {
  Cluster cluster({"dist.world_size=1", "checkpoint.every_steps=20", "eval.every_steps=20",
                   "eval.manifest=eval.jsonl", "eval.spare_workers=false"});
  cluster.start_coordinator();
  cluster.start_peer("w0", {"--role", "worker", "--ckpt-every", "20", "--step-ms", "10"});
  REQUIRE(cluster.wait_for([](auto s) { return workers_running(s, 1, 1); }, 10s));
  cluster.start_peer("spare", {"--role", "worker"});
  REQUIRE(cluster.wait_for([](auto s) { return s.getLastCheckpointStep() >= 60; }, 10s));
  cluster.start_peer("e0", {"--role", "eval"});
  const Deadline deadline(10s);
  while (cluster.peer("e0").output().find("evaljob") == std::string::npos && !deadline.expired())
    std::this_thread::sleep_for(20ms);
  INFO(cluster.logs());
  CHECK_THAT(cluster.peer("e0").output(), Catch::Contains("evaljob 1 ckpt/step_20"));  // the queue waited
  CHECK(cluster.peer("spare").output().find("evaljob") == std::string::npos);
}

TEST_CASE("training finished: loaders are told to stop, status says finished, a late loader too",
          "[coordinator]") {
  // The fake workers ack step 20 (= train.steps) and leave at step 30, once it is committed.
  Cluster cluster({"dist.world_size=2", "train.steps=20"});
  cluster.start_coordinator();
  cluster.start_peer("loader", {"--role", "loader"});
  for (const char* w : {"w0", "w1"})
    cluster.start_peer(w, {"--role", "worker", "--ckpt-every", "20", "--leave-after", "30", "--leave-clean"});
  for (const char* w : {"w0", "w1"}) REQUIRE(cluster.peer(w).wait(10s) == std::optional<int>(0));
  // The fake loader exits 3 on Shutdown, printing its reason.
  const auto loader_exit = cluster.peer("loader").wait(10s);
  INFO(cluster.logs());
  REQUIRE(loader_exit == std::optional<int>(3));
  CHECK(cluster.peer("loader").output().find("shutdown training finished at step 20") != std::string::npos);
  const auto finished = cluster.wait_for([](auto s) { return std::string(s.getPhase().cStr()) == "finished"; }, 5s);
  REQUIRE(finished);
  cluster.start_peer("late", {"--role", "loader"});
  CHECK(cluster.peer("late").wait(10s) == std::optional<int>(3));
  CHECK(cluster.peer("late").output().find("shutdown training finished at step 20") != std::string::npos);
  // Without coordinator.exit_when_done the coordinator keeps serving.
  CHECK(cluster.coordinator().running());
  CHECK(cluster.status().has_value());
}

TEST_CASE("coordinator.exit_when_done: the coordinator exits 0 once training is finished and every member left",
          "[coordinator]") {
  Cluster cluster({"dist.world_size=2", "train.steps=20", "coordinator.exit_when_done=true"});
  cluster.start_coordinator();
  cluster.start_peer("loader", {"--role", "loader"});
  for (const char* w : {"w0", "w1"})
    cluster.start_peer(w, {"--role", "worker", "--ckpt-every", "20", "--leave-after", "30", "--leave-clean"});
  const auto exit_code = cluster.coordinator().wait(20s);
  INFO(cluster.logs());
  REQUIRE(exit_code == std::optional<int>(0));
  CHECK(cluster.peer("loader").wait(5s) == std::optional<int>(3));
  const std::string log = cluster.coordinator().output();
  CHECK(log.find("training finished: step 20 is committed and no worker is left; 1 loader(s) told to stop") !=
        std::string::npos);
  CHECK(log.find("exiting (coordinator.exit_when_done)") != std::string::npos);
}
