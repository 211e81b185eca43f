// coordinator_test_node: the processes the coordinator tests start.
//   coordinator_test_node coordinator [--set section.key=value ...]
//       runs a coordinator until SIGTERM/SIGINT.
//   coordinator_test_node peer --address A --role worker|loader|eval [--step-ms N] [--hang-after N]
//       [--ckpt-every N] [--server-key F --public-key F --secret-key F] [--set ...]
//       a fake worker/loader: registers, heartbeats, plays the rendezvous (rank 0 offers a random
//       128-byte "ncclUniqueId"), advances one step every --step-ms while running, stops advancing
//       after --hang-after steps (but keeps heartbeating), acks a checkpoint every --ckpt-every
//       steps, exits 3 on Shutdown. Prints one line per event on stdout:
//         assign <member> <rank> <world> <gen> | rendezvous <gen> <rank> <world> <digest> <resume>
//         abort <gen> <ms since start> | plan <gen> <worker rank> <loaders> | commit <step>
//         error <kind> <message> | shutdown <reason> | evaljob <job> <checkpoint>
//       An eval peer answers each evalJob with one metric (t2v_r1 = the job id), or with
//       --eval-hold never answers (a member that dies mid-evaluation).
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "coordinator/client.hpp"
#include "coordinator/coordinator.hpp"
#include "core/log.hpp"
#include "core/time.hpp"

namespace {

std::atomic<int> g_stop{0};  // set by the signal handler only: a process-wide fact by nature
void on_signal(int sig) { g_stop = sig; }

using namespace harvest;
using namespace harvest::coord;

std::string arg_after(const std::vector<std::string>& args, const std::string& flag, const std::string& fallback) {
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == flag) return args[i + 1];
  return fallback;
}

std::vector<std::string> overrides_of(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == "--set") out.push_back(args[i + 1]);
  return out;
}

uint64_t digest(const std::string& bytes) {
  uint64_t h = 1469598103934665603ull;
  for (const unsigned char c : bytes) h = (h ^ c) * 1099511628211ull;
  return h;
}

int run_coordinator(const std::vector<std::string>& args) {
  const Config config = load_config(std::nullopt, overrides_of(args));
  init_logging(LogIdentity{"coordinator", -1}, parse_log_level(config.logging.level, "logging.level"));
  Coordinator coordinator(coordinator_settings(config));
  std::printf("listening %s\n", coordinator.endpoint().c_str());
  std::fflush(stdout);
  return coordinator.run(g_stop);
}

int run_peer(const std::vector<std::string>& args) {
  Config config = load_config(std::nullopt, overrides_of(args));
  const std::string role = arg_after(args, "--role", "worker");
  init_logging(LogIdentity{role, -1}, parse_log_level(config.logging.level, "logging.level"));
  ClientOptions options = client_options(config, role == "loader" ? proto::Role::LOADER
                                                 : role == "eval"   ? proto::Role::EVAL
                                                                    : proto::Role::WORKER);
  const bool eval_hold = std::find(args.begin(), args.end(), "--eval-hold") != args.end();
  options.address = arg_after(args, "--address", options.address);
  options.data_endpoint = "tcp://127.0.0.1:1";  // never dialled by these tests
  options.desired_rank = std::stoi(arg_after(args, "--rank", "-1"));
  const std::string server_key = arg_after(args, "--server-key", "");
  if (!server_key.empty()) {
    options.curve.server_public = read_key_file(server_key, "--server-key");
    options.curve.client_public = read_key_file(arg_after(args, "--public-key", ""), "--public-key");
    options.curve.client_secret = read_key_file(arg_after(args, "--secret-key", ""), "--secret-key");
  }
  const Stopwatch clock;
  options.on_abort = [&clock](uint64_t generation, const std::string&) {
    std::printf("abort %llu %.1f\n", static_cast<unsigned long long>(generation), clock.seconds() * 1000.0);
    std::fflush(stdout);
  };
  const auto step_ms = std::chrono::milliseconds(std::stoi(arg_after(args, "--step-ms", "20")));
  const uint64_t hang_after = std::stoull(arg_after(args, "--hang-after", "0"));
  const uint64_t ckpt_every = std::stoull(arg_after(args, "--ckpt-every", "0"));
  // --leave-after N: send Leave at step N and exit 0 (clean when --leave-clean is given).
  const uint64_t leave_after = std::stoull(arg_after(args, "--leave-after", "0"));
  const bool leave_clean = std::find(args.begin(), args.end(), "--leave-clean") != args.end();

  CoordinatorClient client(options);
  Progress progress;
  // A checkpointRequest is acked at step 100000 x (requests seen): the same step on every fake
  // worker (their step counters are not in lockstep the way real ranks are).
  uint64_t checkpoint_requests = 0;
  bool checkpoint_wanted = false;
  int32_t rank = -1;
  uint64_t ranked_generation = 0;
  auto next_step = Clock::now();
  std::mt19937_64 rng(std::random_device{}());
  while (g_stop.load() == 0) {
    auto event = client.next_event(std::chrono::milliseconds(5));
    if (event) {
      const auto body = (*event)->body();
      switch ((*event)->which()) {
        case Body::ASSIGN: {
          const auto a = body.getAssign();
          std::printf("assign %llu %d %u %llu\n", static_cast<unsigned long long>(a.getMemberId()), a.getRank(),
                      a.getWorldSize(), static_cast<unsigned long long>(a.getGeneration()));
          if (a.getRank() >= 0 && a.getGeneration() > ranked_generation) {
            rank = a.getRank();
            ranked_generation = a.getGeneration();
            progress.state = proto::MemberState::FORMING;
            if (rank == 0) {
              std::string id(128, '\0');
              for (auto& c : id) c = static_cast<char>(rng());
              client.offer_ncclid(ranked_generation, id);
            }
          }
          break;
        }
        case Body::RENDEZVOUS: {
          const auto r = body.getRendezvous();
          const auto blob = r.getBackend().getNcclUniqueId();
          std::printf("rendezvous %llu %d %u %016llx %llu\n", static_cast<unsigned long long>(r.getGeneration()),
                      r.getRank(), r.getWorldSize(),
                      static_cast<unsigned long long>(digest(std::string(reinterpret_cast<const char*>(blob.begin()), blob.size()))),
                      static_cast<unsigned long long>(r.getResumeStep()));
          progress.generation = r.getGeneration();
          progress.state = proto::MemberState::RUNNING;
          progress.step = r.getResumeStep();  // resume from the last committed checkpoint
          next_step = Clock::now() + step_ms;
          break;
        }
        case Body::ABORT:
          progress.state = proto::MemberState::ABORTED;
          break;
        case Body::SHARD_PLAN: {
          const auto p = body.getShardPlan();
          std::printf("plan %llu %d %u\n", static_cast<unsigned long long>(p.getGeneration()), p.getWorkerRank(),
                      p.getLoaderCount());
          if (role == "loader") progress.state = proto::MemberState::RUNNING;
          break;
        }
        case Body::CHECKPOINT_REQUEST:
          ++checkpoint_requests;
          checkpoint_wanted = true;
          std::printf("checkpoint-request %llu\n",
                      static_cast<unsigned long long>(body.getCheckpointRequest().getGeneration()));
          break;
        case Body::CHECKPOINT_COMMIT:
          std::printf("commit %llu\n", static_cast<unsigned long long>(body.getCheckpointCommit().getStep()));
          break;
        case Body::EVAL_JOB: {
          const auto job = body.getEvalJob();
          std::printf("evaljob %llu %s\n", static_cast<unsigned long long>(job.getJobId()),
                      job.getCheckpoint().cStr());
          if (eval_hold) break;
          OutMessage reply;
          auto r = reply.body().initEvalResult();
          r.setJobId(job.getJobId());
          r.setMemberId(client.member_id());
          auto metric = r.initMetrics(1)[0];
          metric.setName("t2v_r1");
          metric.setValue(static_cast<double>(job.getJobId()));
          client.send(reply);
          break;
        }
        case Body::ERROR:
          std::printf("error %d %s\n", static_cast<int>(body.getError().getKind()), body.getError().getMessage().cStr());
          break;
        case Body::SHUTDOWN:
          std::printf("shutdown %s\n", body.getShutdown().getReason().cStr());
          std::fflush(stdout);
          return 3;
        default:
          break;
      }
      std::fflush(stdout);
    }
    const bool hung = hang_after > 0 && progress.step >= hang_after;
    if (role == "worker" && progress.state == proto::MemberState::RUNNING && !hung && Clock::now() >= next_step) {
      ++progress.step;
      next_step += step_ms;
      progress.samples_per_sec = 8.0 * 1000.0 / static_cast<double>(step_ms.count());
      if (progress.step % 10 == 0)
        client.report_step(progress.generation, progress.step, progress.step * 8, 1.0, progress.samples_per_sec);
      if (ckpt_every > 0 && progress.step % ckpt_every == 0)
        client.ack_checkpoint(progress.generation, progress.step, rank, "ckpt/step_" + std::to_string(progress.step),
                              1024, 0, progress.step * 8);
      if (checkpoint_wanted) {
        checkpoint_wanted = false;
        const uint64_t step = 100000 * checkpoint_requests;
        client.ack_checkpoint(progress.generation, step, rank, "ckpt/step_" + std::to_string(step), 1024, 0, step);
      }
      if (leave_after > 0 && progress.step >= leave_after) {
        client.leave(leave_clean ? "training finished" : "gave up", leave_clean);
        std::printf("left %s\n", leave_clean ? "clean" : "unclean");
        std::fflush(stdout);
        return 0;  // the client's destructor sends what is queued (the leave) before closing
      }
    }
    client.set_progress(progress);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  const std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (!args.empty() && args[0] == "coordinator") return run_coordinator(args);
    if (!args.empty() && args[0] == "peer") return run_peer(args);
    std::fprintf(stderr, "usage: coordinator_test_node coordinator|peer [options]\n");
    return 2;
  } catch (const harvest::Error& e) {
    std::fprintf(stderr, "coordinator_test_node: %s\n", e.what());
    return harvest::exit_code_for(e.kind());
  }
}
