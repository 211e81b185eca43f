#include "worker/coordinated_worker.hpp"

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <thread>

#include "checkpoint/from_config.hpp"
#include "checkpoint/retention.hpp"
#include "coordinator/client.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/time.hpp"
#include "model/tokenizer/tokenizer.hpp"
#include "worker/loader_hub.hpp"
#include "worker/rank_trainer.hpp"

namespace harvest {
namespace fs = std::filesystem;
using coord::Body;
using coord::InMessage;

namespace {

// Wall-clock milliseconds, printed beside the events whose timing matters across processes
// (an abort, the first step after recovery) so that detection and recovery can be measured.
int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Lets the coordinator client's thread abort the current generation's group the moment an Abort
// arrives, while the training thread may be blocked inside a collective.
class GroupAborter {
 public:
  void arm(CommGroup* group, uint64_t generation) {
    std::lock_guard<std::mutex> lock(mutex_);
    group_ = group;
    generation_ = generation;
  }
  void disarm() { arm(nullptr, 0); }
  void abort_below(uint64_t generation) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (group_ && generation_ < generation) group_->abort();
  }

 private:
  std::mutex mutex_;
  CommGroup* group_ = nullptr;
  uint64_t generation_ = 0;
};

// One evaluation job on a thread of its own while this worker is a spare: the main thread keeps
// taking the coordinator's messages, so a rank cancels the job at once.
class SpareJob {
 public:
  ~SpareJob() {
    cancel();
    join();
  }
  bool busy() const { return thread_.joinable(); }
  uint64_t job_id() const { return job_id_; }
  const std::string& checkpoint() const { return checkpoint_; }

  void start(uint64_t job_id, const std::string& checkpoint, const std::string& device,
             const SpareEvaluator& evaluate) {
    job_id_ = job_id;
    checkpoint_ = checkpoint;
    cancel_ = false;
    done_ = false;
    thread_ = std::thread([this, evaluate, checkpoint, device] {
      SpareEvalOutcome outcome;
      try {
        outcome = evaluate(checkpoint, device, cancel_);
      } catch (const std::exception& e) {
        outcome.error = e.what();
      }
      std::lock_guard<std::mutex> lock(mutex_);
      outcome_ = std::move(outcome);
      done_ = true;
    });
  }
  void cancel() { cancel_ = true; }
  // The outcome once the thread has ended (joined), else nullopt; `wait`: until it ends.
  std::optional<SpareEvalOutcome> take(bool wait) {
    if (!busy()) return std::nullopt;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!done_ && !wait) return std::nullopt;
    }
    join();
    std::lock_guard<std::mutex> lock(mutex_);
    return std::move(outcome_);
  }

 private:
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  std::thread thread_;
  std::atomic<bool> cancel_{false};
  std::mutex mutex_;
  bool done_ = false;
  SpareEvalOutcome outcome_;
  uint64_t job_id_ = 0;
  std::string checkpoint_;
};

// Where this worker stands in one generation: Assign + Rendezvous.
struct Placement {
  uint64_t generation = 0;
  int rank = -1;
  int world_size = 0;
  std::string store;    // Gloo: rank 0's store, "host:port"
  std::string nccl_id;  // NCCL: rank 0's 128-byte ncclUniqueId
  uint64_t resume_step = 0;
  std::string resume_checkpoint;      // the committed step folder (empty: none)
  std::shared_ptr<GlooStore> served;  // rank 0: the store it serves
};

enum class Ending { Finished, Stopped, Aborted };

// What the ranks decide together at a step boundary.
struct Agreed {
  bool stop = false;        // a stop any rank saw (a signal)
  bool checkpoint = false;  // a checkpoint any rank was asked for (checkpointRequest)
};

// One all-reduce of every rank's votes, so all take the same decision at the same boundary:
// nobody starts a step that a peer skips, and a requested checkpoint holds the same step on every
// rank whenever the request reached each of them.
Agreed agree(CommGroup& group, const torch::Device& device, bool stop_here, bool checkpoint_here,
             double timeout_s) {
  at::Tensor votes = torch::tensor({stop_here ? 1.0f : 0.0f, checkpoint_here ? 1.0f : 0.0f},
                                   torch::TensorOptions(device));
  group.all_reduce_sum(votes, Deadline::after_seconds(timeout_s));
  const at::Tensor counted = votes.cpu();
  return {counted[0].item<float>() > 0, counted[1].item<float>() > 0};
}

// World size of a committed step folder, from its part-<rank>-of-<W>.h5 names (0: no parts).
int64_t parts_in(const fs::path& folder) {
  static const std::regex name(R"(part-\d+-of-(\d+)\.h5)");
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    std::smatch m;
    const std::string file = entry.path().filename().string();
    if (std::regex_match(file, m, name)) return std::stoll(m[1].str());
  }
  return 0;
}

// The part this rank restores from a committed step folder: its own when the world size is the
// same (exact resume); otherwise part rank mod W (weights and optimizer are the same in every
// part and the sampler position is global: only the random streams come from another rank).
fs::path part_to_resume(const fs::path& folder, int64_t step, int rank, int world_size) {
  const int64_t parts = parts_in(folder);
  HARVEST_REQUIRE(parts > 0, Runtime, "committed checkpoint ", folder.string(),
                  " has no part-<rank>-of-<W>.h5 files");
  if (parts != world_size)
    spdlog::warn(
        "resuming {} ({} part(s)) with {} rank(s): rank {} restores part {}; exact resume holds "
        "only for the "
        "same world size",
        folder.string(), parts, world_size, rank, rank % parts);
  return checkpoint::part_path(folder.parent_path(), step, rank % parts, parts);
}

class CoordinatedWorker {
 public:
  CoordinatedWorker(const Config& config, const WorkerOptions& options,
                    const std::atomic<int>& stop)
      : config_(config),
        spare_eval_(options.spare_eval),
        stop_(stop),
        device_(training_device(config.train, local_device_index(options.device))),
        nccl_(collective_backend(config.dist, device_) == "nccl") {
    coord::ClientOptions client = coord::client_options(config, proto::Role::WORKER);
    client.desired_rank = options.desired_rank;
    client.on_abort = [this](uint64_t generation, const std::string& reason) {
      spdlog::warn("abort: generation {} ends ({}); aborting collectives (unix_ms={})",
                   generation - 1, reason, unix_ms());
      aborter_.abort_below(generation);
      if (loader_hub_) loader_hub_->abort_below(generation);
    };
    if (config.data.loader_placement == "coordinator" && config.data.loaders_per_worker > 0) {
      // Bound before registering: the endpoint goes to the coordinator with the registration.
      loader_hub_ = std::make_shared<LoaderHub>(config);
      client.data_endpoint = loader_hub_->endpoint();
      client.data_curve_key = loader_hub_->curve_public();
      client.on_shard_plan = [hub = loader_hub_](const coord::ShardPlanInfo& plan) {
        hub->post(plan.generation, plan.loader_member_ids);
      };
      spdlog::info("listening for coordinator-placed loaders at {}", loader_hub_->endpoint());
    }
    tokenizer_ = std::make_shared<const tokenizer::Tokenizer>(
        tokenizer::Tokenizer::load(config.model.vocab));
    client_ = std::make_unique<coord::CoordinatorClient>(client);
  }

  int run() {
    for (;;) {
      std::optional<Placement> placement = join_generation();
      if (!placement && shutdown_ && shutdown_graceful_)
        return leave(cat("the coordinator says ", *shutdown_), /*clean=*/true);
      if (!placement) return leave("stopped before joining a generation", /*clean=*/false);
      switch (train_generation(*placement)) {
        case Ending::Finished:
          return leave("training finished", /*clean=*/true);
        case Ending::Stopped:
          return leave(cat("stopped by SIG", sigabbrev_np(stop_.load())), /*clean=*/true);
        case Ending::Aborted:
          break;  // the next generation
      }
    }
  }

 private:
  // Waits for a rank in a new generation (spares wait here too, running the eval jobs they are
  // handed) and its rendezvous; rank 0 serves the Gloo store first and offers it. nullopt: a
  // stop signal came first, or the coordinator said training is finished (graceful shutdown).
  std::optional<Placement> join_generation() {
    set_progress(proto::MemberState::REGISTERED);
    std::optional<Placement> p;
    while (stop_.load() == 0) {
      pump_events(std::chrono::milliseconds(50));
      report_spare_job(/*wait=*/false);
      start_spare_job();
      if (shutdown_) {
        HARVEST_REQUIRE(shutdown_graceful_, Runtime, "the coordinator shut this worker down: ",
                        *shutdown_);
        // Training is over: an evaluation in progress still ends and is reported.
        if (spare_job_.busy()) continue;
        return std::nullopt;
      }
      if (!assigned_ || assigned_->generation < client_->abort_generation()) {
        p.reset();  // not placed yet, or the generation aborted before it formed
        continue;
      }
      if (!p || p->generation != assigned_->generation) {
        // The device is training's now: the evaluation stops within one batch (cancelled by
        // the assign), and is queued again by the coordinator.
        report_spare_job(/*wait=*/true);
        p = *assigned_;
        set_progress(proto::MemberState::FORMING);
        if (p->rank == 0 && nccl_) {
          client_->offer_ncclid(p->generation, new_nccl_unique_id());
        } else if (p->rank == 0) {
          p->served = serve_gloo_store(config_.dist.host, 0, p->world_size, config_.dist.timeout_s);
          client_->offer_gloo_store(p->generation, cat(config_.dist.host, ":", p->served->port()));
        }
      }
      if (rendezvous_ && rendezvous_->generation == p->generation) {
        p->store = rendezvous_->store;
        p->nccl_id = rendezvous_->nccl_id;
        p->resume_step = rendezvous_->resume_step;
        p->resume_checkpoint = rendezvous_->resume_checkpoint;
        return p;
      }
    }
    spare_job_.cancel();
    report_spare_job(/*wait=*/true);
    return std::nullopt;
  }

  // An evalJob: taken up in join_generation, where this worker waits as a spare.
  void handle_eval_job(proto::EvalJob::Reader job) {
    if (!spare_eval_) {
      client_->send_eval_result(job.getJobId(), {}, "this worker takes no eval jobs");
      return;
    }
    if (pending_eval_)
      spdlog::warn("eval job {} replaced by eval job {} before it started", pending_eval_->job,
                   job.getJobId());
    pending_eval_ = PendingEval{job.getJobId(), job.getCheckpoint().cStr(), job.getStep()};
  }

  // Starts the job that came, on a thread of its own, unless this worker holds a rank in a live
  // generation now: then the coordinator queues it again when it sees that generation formed.
  void start_spare_job() {
    if (!pending_eval_) return;
    const auto [job, checkpoint, step] = *pending_eval_;
    pending_eval_.reset();
    const bool ranked = assigned_ && assigned_->generation >= client_->abort_generation();
    if (ranked || spare_job_.busy() || shutdown_) {
      spdlog::info("eval job {} ({}) not taken: this worker is {}", job, checkpoint,
                   spare_job_.busy() ? "evaluating" : shutdown_ ? "leaving" : "taking a rank");
      return;
    }
    spdlog::info("spare: evaluating {} (eval job {}) on {} until a rank comes", checkpoint, job,
                 device_.str());
    spare_job_.start(job, checkpoint, device_.str(), spare_eval_);
    set_progress(proto::MemberState::EVALUATING, step);  // `harvest status` shows it
  }

  // The spare's evaluation, once it has ended: its result to the coordinator (a cancelled one
  // has none: the coordinator requeued the job when it gave this worker a rank).
  void report_spare_job(bool wait) {
    const uint64_t job = spare_job_.job_id();
    const std::string checkpoint = spare_job_.checkpoint();
    const std::optional<SpareEvalOutcome> outcome = spare_job_.take(wait);
    if (!outcome) return;
    set_progress(proto::MemberState::REGISTERED);  // a spare again (or forming, if given a rank)
    if (outcome->cancelled) {
      spdlog::info("spare: evaluation of {} (eval job {}) cancelled: this worker took a rank",
                   checkpoint, job);
      return;
    }
    if (outcome->error.empty())
      spdlog::info("spare: evaluated {} (eval job {}): {} metric(s)", checkpoint, job,
                   outcome->metrics.size());
    else
      spdlog::warn("spare: evaluation of {} (eval job {}) failed: {}", checkpoint, job,
                   outcome->error);
    client_->send_eval_result(job, outcome->metrics, outcome->error);
  }

  // One generation, top to bottom: group, resume, steps, checkpoints, final checkpoint.
  Ending train_generation(const Placement& p) {
    generation_ = p.generation;
    rank_ = p.rank;
    set_log_rank(p.rank);
    std::unique_ptr<CommGroup> group = form_group(p);
    if (!group) return Ending::Aborted;
    aborter_.arm(group.get(), p.generation);
    if (client_->abort_generation() > p.generation)
      group->abort();  // an Abort that came while forming
    try {
      checkpoint::SaverOptions saver = checkpoint::saver_options(config_);
      saver.on_part_durable = [this, generation = p.generation, rank = p.rank](
                                  int64_t step, const fs::path& part) {
        ack_part(generation, rank, step, part);
      };
      if (loader_hub_) loader_hub_->enter_generation(p.generation);
      RankTrainer trainer(
          config_, tokenizer_, *group, device_, saver,
          {{"rank", p.rank}, {"generation", p.generation}, {"world_size", p.world_size}},
          loader_hub_);
      const bool resumed = resume(trainer, p);
      committed_step_ = trainer.progress().step;
      saved_step_ = committed_step_;
      checkpoint_wanted_ = false;  // a request for an older generation: the ranks resumed anyway
      // Every rank decides alike: the placement and the committed markers are the same for all.
      if (!resumed && trainer.initial_save_due()) {
        spdlog::info("generation {}: saving the starting weights as step 0", p.generation);
        save(trainer, p);
      }
      spdlog::info("generation {}: rank {} of {}, training from step {} to {} (unix_ms={})",
                   p.generation, p.rank, p.world_size, trainer.progress().step, config_.train.steps,
                   unix_ms());
      set_progress(proto::MemberState::RUNNING, trainer.progress().step);

      bool first_step = true;
      Ending ending = Ending::Finished;
      while (!trainer.finished()) {
        const Agreed agreed =
            agree(*group, device_, stop_.load() != 0, checkpoint_wanted_, config_.dist.timeout_s);
        if (agreed.stop) {
          ending = Ending::Stopped;
          break;
        }
        if (agreed.checkpoint) {
          checkpoint_wanted_ = false;
          if (trainer.progress().step > saved_step_) {
            spdlog::info("generation {}: saving step {} as requested through the coordinator",
                         p.generation, trainer.progress().step);
            save(trainer, p);
          }
        }
        const StepOutcome outcome = trainer.step();
        report(trainer, outcome);
        if (first_step)
          spdlog::info("generation {}: first step done, at step {} (unix_ms={})", p.generation,
                       trainer.progress().step, unix_ms());
        first_step = false;
        if (trainer.checkpoint_due() && trainer.progress().step > saved_step_) save(trainer, p);
        ack_single_rank_save(trainer, p);
        pump_events(std::chrono::milliseconds(0));
        if (shutdown_)
          fail(ErrorKind::Runtime, "the coordinator shut this worker down: ", *shutdown_);
      }
      if (trainer.progress().step > committed_step_) {
        // A save of this very step may be in flight (periodic or requested): wait for its commit.
        if (trainer.progress().step > saved_step_) save(trainer, p);
        trainer.wait_saved();
        ack_single_rank_save(trainer, p);
        if (!await_commit(trainer.progress().step)) return end_generation(Ending::Aborted);
      }
      spdlog::info("generation {}: {} at step {}; checkpoint step {} committed", p.generation,
                   ending == Ending::Finished ? "finished" : "stopped", trainer.progress().step,
                   committed_step_);
      return end_generation(ending);
    } catch (const std::exception& e) {
      // A collective that failed because a peer died is the expected way to learn of it: the
      // coordinator's Abort is on its way. Anything else is this worker's own failure.
      if (!await_abort()) throw;
      spdlog::warn("generation {} ended: {}", p.generation, e.what());
      return end_generation(Ending::Aborted);
    }
  }

  Ending end_generation(Ending ending) {
    aborter_.disarm();
    return ending;
  }

  // Forms the group (NCCL or Gloo) on a helper thread, so that an Abort or a stop ends the wait
  // at once; a formation left behind finishes or times out on its own and is dropped.
  std::unique_ptr<CommGroup> form_group(const Placement& p) {
    struct Forming {
      std::mutex mutex;
      std::condition_variable done;
      std::unique_ptr<CommGroup> group;
      std::string error;
      bool finished = false;
    };
    auto forming = std::make_shared<Forming>();
    std::function<std::unique_ptr<CommGroup>()> make;
    if (nccl_) {
      NcclRendezvous r;
      r.unique_id = p.nccl_id;
      r.rank = p.rank;
      r.world_size = p.world_size;
      r.generation = static_cast<int64_t>(p.generation);
      r.device = device_.index();
      make = [r] { return make_nccl_group(r); };
    } else {
      GlooRendezvous r;
      const auto colon = p.store.rfind(':');
      HARVEST_REQUIRE(colon != std::string::npos, Runtime, "generation ", p.generation,
                      ": the coordinator handed out Gloo store '", p.store, "', not host:port");
      r.host = p.store.substr(0, colon);
      r.port = std::stoi(p.store.substr(colon + 1));
      r.rank = p.rank;
      r.world_size = p.world_size;
      r.generation = static_cast<int64_t>(p.generation);
      r.timeout_s = config_.dist.timeout_s;
      r.interface_host = config_.dist.host;
      make = [r, served = p.served] { return make_gloo_group(r, served); };
    }
    std::thread([forming, make] {
      std::unique_ptr<CommGroup> group;
      std::string error;
      try {
        group = make();
      } catch (const std::exception& e) {
        error = e.what();
      }
      std::lock_guard<std::mutex> lock(forming->mutex);
      forming->group = std::move(group);
      forming->error = error;
      forming->finished = true;
      forming->done.notify_all();
    }).detach();
    std::unique_lock<std::mutex> lock(forming->mutex);
    while (!forming->done.wait_for(lock, std::chrono::milliseconds(20),
                                   [&] { return forming->finished; })) {
      if (client_->abort_generation() > p.generation || stop_.load() != 0) {
        spdlog::warn("generation {}: abandoned while forming the group", p.generation);
        return nullptr;
      }
    }
    if (!forming->group) {
      spdlog::warn("generation {}: {}", p.generation, forming->error);
      if (await_abort()) return nullptr;
      fail(ErrorKind::Runtime, "generation ", p.generation, ": ", forming->error);
    }
    return std::move(forming->group);
  }

  // true when the trainer continues from a checkpoint (step 0 too: checkpoint.save_initial).
  bool resume(RankTrainer& trainer, const Placement& p) {
    if (!p.resume_checkpoint.empty()) {
      const fs::path folder = p.resume_checkpoint;
      // The coordinator committed it (journal); the marker may not be written yet if the old
      // rank 0 died in between: the new rank 0 writes it.
      if (p.rank == 0) commit_marker(p.resume_step, folder);
      trainer.resume(
          part_to_resume(folder, static_cast<int64_t>(p.resume_step), p.rank, p.world_size));
      return true;
    }
    // No commit in this job's journal: checkpoint.resume decides (a run continued from an
    // earlier job's checkpoints, or from scratch).
    if (const auto found = checkpoint::resolve_resume(config_)) {
      for (const auto& why : found->skipped) spdlog::warn("not resuming from {}", why);
      trainer.resume(part_to_resume(found->parts.at(0).parent_path(), found->checkpoint.step,
                                    p.rank, p.world_size));
      return true;
    }
    return false;
  }

  void save(RankTrainer& trainer, const Placement& p) {
    // A save waits for the one before it anyway; a group of one acks that one first.
    if (p.world_size == 1) {
      trainer.wait_for_saves();
      ack_single_rank_save(trainer, p);
    }
    {
      std::lock_guard<std::mutex> lock(positions_mutex_);
      positions_[trainer.progress().step] = parse_sampler_state(trainer.sampler_state());
    }
    trainer.save();
    saved_step_ = trainer.progress().step;
  }

  // Phase one (on the saver's thread): this rank's part is durable.
  void ack_part(uint64_t generation, int rank, int64_t step, const fs::path& part) {
    data::SamplerState position;
    {
      std::lock_guard<std::mutex> lock(positions_mutex_);
      position = positions_[step];
      positions_.erase(positions_.begin(), positions_.upper_bound(step));
    }
    client_->ack_checkpoint(generation, static_cast<uint64_t>(step), rank,
                            part.parent_path().string(), fs::file_size(part), position.epoch,
                            position.cursor);
  }

  // A group of one: the saver commits the part itself (no on_part_durable call), so the ack
  // follows its finished save here instead.
  void ack_single_rank_save(const RankTrainer& trainer, const Placement& p) {
    if (p.world_size != 1) return;
    const auto saved = trainer.last_save();
    if (!saved || !saved->ok || saved->step <= acked_single_step_) return;
    acked_single_step_ = saved->step;
    ack_part(p.generation, 0, saved->step,
             checkpoint::part_path(checkpoint::checkpoint_dir(config_), saved->step, 0, 1));
  }

  // Phase two: waits for the coordinator's commit of `step`. false: the generation was aborted
  // first (the new one resumes from whatever was committed).
  bool await_commit(int64_t step) {
    const Deadline deadline = Deadline::after_seconds(config_.dist.timeout_s);
    set_progress(proto::MemberState::RUNNING, static_cast<uint64_t>(step));
    for (;;) {
      // An Abort is queued after any commit sent before it: look at the flag, then drain.
      const bool aborted = client_->abort_generation() > generation_;
      pump_events(std::chrono::milliseconds(aborted ? 0 : 50));
      if (committed_step_ >= step) return true;
      if (aborted) return false;
      HARVEST_REQUIRE(!deadline.expired(), Runtime, "checkpoint step ", step,
                      ": no checkpointCommit from ", config_.coordinator.address,
                      " within dist.timeout_s = ", config_.dist.timeout_s, " s");
    }
  }

  // After a failed collective: true once the coordinator's Abort for this generation arrived
  // (within twice its loss-detection time), false when none came (the failure is our own).
  bool await_abort() {
    const auto limit = std::chrono::milliseconds(
        2 * config_.coordinator.heartbeat_ms * config_.coordinator.miss_limit + 1000);
    const Deadline deadline(limit);
    while (client_->abort_generation() <= generation_ && !deadline.expired())
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return client_->abort_generation() > generation_;
  }

  // Rank 0 writes the commit marker of a checkpoint the coordinator committed, then applies
  // retention. Idempotent: a step already listed is listed again with its parts re-checked.
  void commit_marker(uint64_t step, const fs::path& folder) {
    const int64_t world = parts_in(folder);
    HARVEST_REQUIRE(world > 0, Runtime, "committed checkpoint step ", step, " at ", folder.string(),
                    " has no parts to commit");
    checkpoint::commit_checkpoint(folder.parent_path(), static_cast<int64_t>(step), world);
    try {
      checkpoint::apply_retention(folder.parent_path(),
                                  {config_.checkpoint.keep_last, config_.checkpoint.keep_every});
    } catch (const std::exception& e) {
      spdlog::warn("checkpoint retention in {} failed (retried after the next commit): {}",
                   folder.parent_path().string(), e.what());
    }
  }

  void report(const RankTrainer& trainer, const StepOutcome& outcome) {
    const uint64_t step = static_cast<uint64_t>(trainer.progress().step);
    const double samples_per_sec =
        outcome.step_s > 0 ? static_cast<double>(outcome.clips) / outcome.step_s : 0;
    coord::Progress progress;
    progress.generation = generation_;
    progress.step = step;
    progress.state = proto::MemberState::RUNNING;
    progress.loss = outcome.loss;
    progress.samples_per_sec = samples_per_sec;
    progress.step_seconds = outcome.step_s;
    client_->set_progress(progress);
    if (step % static_cast<uint64_t>(config_.train.log_every) == 0)
      client_->report_step(generation_, step, parse_sampler_state(trainer.sampler_state()).cursor,
                           outcome.loss, samples_per_sec);
  }

  void set_progress(proto::MemberState state, uint64_t step = 0) {
    coord::Progress progress;
    progress.generation = generation_;
    progress.step = step;
    progress.state = state;
    client_->set_progress(progress);
  }

  int leave(const std::string& reason, bool clean) {
    spdlog::info("leaving: {}", reason);
    client_->leave(reason, clean);
    return 0;
  }

  // Takes what the coordinator sent, waiting at most `wait` for the first message.
  void pump_events(std::chrono::milliseconds wait) {
    for (auto event = client_->next_event(wait); event;
         event = client_->next_event(std::chrono::milliseconds(0)))
      handle(**event);
  }

  void handle(const InMessage& message) {
    const auto body = message.body();
    switch (message.which()) {
      case Body::ASSIGN:
        return handle_assign(body.getAssign());
      case Body::RENDEZVOUS:
        return handle_rendezvous(body.getRendezvous());
      case Body::CHECKPOINT_COMMIT:
        return handle_commit(body.getCheckpointCommit());
      case Body::ABORT:
        return;  // acted on by the client thread (on_abort)
      case Body::SHARD_PLAN:
        return;  // this worker starts its own loaders (docs/data.md)
      case Body::SHUTDOWN:
        return handle_shutdown(body.getShutdown());
      case Body::EVAL_JOB:
        return handle_eval_job(body.getEvalJob());
      case Body::CHECKPOINT_REQUEST:
        if (body.getCheckpointRequest().getGeneration() == generation_) {
          spdlog::info("checkpoint requested through the coordinator: saving at the next step boundary");
          checkpoint_wanted_ = true;
        }
        return;
      case Body::ERROR:
        spdlog::warn("coordinator {}: {}", config_.coordinator.address,
                     body.getError().getMessage().cStr());
        return;
      default:
        spdlog::warn("ignored a {} message from the coordinator",
                     coord::body_name(message.which()));
    }
  }

  void handle_assign(proto::Assign::Reader a) {
    if (a.getRank() < 0) {
      if (a.getGeneration() > 0 && a.getWorldSize() > 0)
        spdlog::info("spare in generation {}: waiting for a place", a.getGeneration());
      return;
    }
    if (assigned_ && a.getGeneration() <= assigned_->generation) return;
    if (spare_job_.busy()) spare_job_.cancel();  // reported (as cancelled) before the rank is taken
    Placement p;
    p.generation = a.getGeneration();
    p.rank = a.getRank();
    p.world_size = static_cast<int>(a.getWorldSize());
    assigned_ = p;
    spdlog::info("assigned rank {} of {} in generation {}", p.rank, p.world_size, p.generation);
  }

  void handle_rendezvous(proto::Rendezvous::Reader r) {
    const bool nccl = r.getBackend().isNcclUniqueId();
    HARVEST_REQUIRE(nccl ? nccl_ : r.getBackend().isGlooStore() && !nccl_, Runtime, "generation ",
                    r.getGeneration(), ": the coordinator handed out ",
                    nccl                           ? "an NCCL unique id"
                    : r.getBackend().isGlooStore() ? "a Gloo store"
                                                   : "an unknown backend",
                    " but this worker trains with ", nccl_ ? "NCCL" : "Gloo", " on ", device_.str(),
                    " (dist.backend and train.device must agree on every worker)");
    Placement p;
    p.generation = r.getGeneration();
    p.rank = r.getRank();
    p.world_size = static_cast<int>(r.getWorldSize());
    if (nccl) {
      const auto id = r.getBackend().getNcclUniqueId();
      p.nccl_id.assign(reinterpret_cast<const char*>(id.begin()), id.size());
    } else {
      p.store = r.getBackend().getGlooStore();
    }
    p.resume_step = r.getResumeStep();
    p.resume_checkpoint = r.getResumeCheckpoint();
    rendezvous_ = p;
  }

  void handle_commit(proto::CheckpointCommit::Reader c) {
    const auto step = static_cast<int64_t>(c.getStep());
    // Only the generation's rank 0 writes the marker (one committer per folder).
    if (c.getGeneration() == generation_ && rank_ == 0) {
      try {
        commit_marker(c.getStep(), c.getPath().cStr());
      } catch (const std::exception& e) {
        spdlog::error(
            "checkpoint step {}: the coordinator committed it but its marker could not be written: "
            "{}",
            step, e.what());
      }
    }
    if (c.getGeneration() == generation_) committed_step_ = std::max(committed_step_, step);
    spdlog::info("checkpoint step {} committed", step);
  }

  void handle_shutdown(proto::Shutdown::Reader s) {
    shutdown_ = s.getReason().cStr();
    shutdown_graceful_ = s.getGraceful();
    if (shutdown_graceful_)
      spdlog::info("the coordinator ends this worker's part: {}", *shutdown_);
    else
      spdlog::error("the coordinator shuts this worker down: {}", *shutdown_);
  }

  Config config_;
  SpareEvaluator spare_eval_;
  const std::atomic<int>& stop_;
  torch::Device device_;  // this worker's device (training_device())
  bool nccl_;             // NCCL on CUDA, else Gloo
  std::shared_ptr<const tokenizer::Tokenizer> tokenizer_;
  GroupAborter aborter_;  // before the client: its thread calls it
  std::shared_ptr<LoaderHub> loader_hub_;  // coordinator-placed loaders (else null)
  std::unique_ptr<coord::CoordinatorClient> client_;
  std::optional<Placement> assigned_;
  std::optional<Placement> rendezvous_;
  std::optional<std::string> shutdown_;
  bool shutdown_graceful_ = false;
  struct PendingEval {
    uint64_t job = 0;
    std::string checkpoint;
    uint64_t step = 0;  // the checkpoint's training step
  };
  std::optional<PendingEval> pending_eval_;  // an evalJob not started yet
  SpareJob spare_job_;  // declared after the client: cancelled and joined before it goes
  uint64_t generation_ = 0;
  int rank_ = -1;
  int64_t committed_step_ = 0;
  int64_t saved_step_ = -1;          // the last step this rank saved (in flight or done)
  bool checkpoint_wanted_ = false;   // a checkpointRequest came: vote for a save at the boundary
  int64_t acked_single_step_ = -1;  // a step-0 checkpoint is acked too
  std::mutex positions_mutex_;      // the saver thread reads what save() recorded
  std::map<int64_t, data::SamplerState> positions_;
};

}  // namespace

int run_coordinated_worker(const Config& config, const WorkerOptions& options,
                           const std::atomic<int>& stop) {
  require_trainable(config);
  HARVEST_REQUIRE(config.dist.backend != "inproc", Config,
                  "dist.backend = inproc: `harvest worker` joins a group (use auto, nccl or gloo)");
  at::set_num_threads(intra_op_threads(config.train));
  CoordinatedWorker worker(config, options, stop);
  return worker.run();
}

}  // namespace harvest
