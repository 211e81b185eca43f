// harvest eval: one checkpoint, one zero-shot task; the protocol and metrics as a readable block,
// then (with --json) the whole record as the last line.
// harvest sweep RUN_DIR: every committed checkpoint of a run not yet evaluated; results.csv,
// results.json and one SVG chart per metric. Defaults come from the run's [eval] config section.
#include <chrono>
#include <filesystem>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "checkpoint/commit.hpp"
#include "checkpoint/from_config.hpp"
#include "cli/commands.hpp"
#include "coordinator/client.hpp"
#include "coordinator/signal_watcher.hpp"
#include "core/cpus.hpp"
#include "core/error.hpp"
#include "core/time.hpp"
#include "eval/evaluate.hpp"
#include "eval/sweep.hpp"

namespace harvest::cli {
namespace {

namespace fs = std::filesystem;

// Flags eval and sweep share.
struct TaskArgs {
  std::string root;
  int64_t frames = 0;
  int64_t size = 0;
  int64_t batch_size = 0;  // 0: [eval] batch_size of the run, else 32
  int threads = 0;
  std::string captions = "all";
  bool dsl = false;
  double dsl_scale = 100.0;
  std::string labels, templates;
  std::string vocab;
  double wise_ft_alpha = -1;  // < 0: not given
  std::string base_checkpoint;
  std::string device = "cpu";
  bool no_progress = false;

  void add_to(CLI::App& cmd) {
    cmd.add_option("--root", root, "Folder video paths are relative to (default: the manifest's)");
    cmd.add_option("--frames", frames, "Frames per video; 0: the model's");
    cmd.add_option("--size", size, "Input size; 0: the model's (the only one it takes)");
    cmd.add_option("--batch-size", batch_size,
                   "Clips per forward pass (default 32, or the run's eval.batch_size)");
    cmd.add_option("--threads", threads, "Decode and LibTorch threads; 0: one per core")
        ->capture_default_str();
    cmd.add_option("--captions", captions,
                   "Retrieval: all (every caption a query) or first (one per video)")
        ->capture_default_str();
    cmd.add_flag("--dsl", dsl, "Retrieval: also report dual-softmax re-scoring");
    cmd.add_option("--dsl-scale", dsl_scale, "Inverse temperature of the dual softmax")
        ->capture_default_str();
    cmd.add_option("--labels", labels,
                   "Classification: class names, one a line (default: the manifest's labels)");
    cmd.add_option("--templates", templates,
                   "Classification: prompt templates, one a line with {} (default: {})");
    cmd.add_option("--vocab", vocab, "Vocabulary (default: the one the checkpoint names)");
    cmd.add_option("--wise-ft-alpha", wise_ft_alpha,
                   "WiSE-FT: weight of --base-checkpoint in the weight average (temporal embedding "
                   "kept); 0: off");
    cmd.add_option("--base-checkpoint", base_checkpoint, "WiSE-FT base model (the imported CLIP)");
    cmd.add_option("--device", device, "cpu, cuda, cuda:N or auto (cuda when visible)")
        ->capture_default_str();
    cmd.add_flag("--no-progress", no_progress, "No progress bar or ETA lines");
  }

  int resolved_threads() const { return threads > 0 ? threads : usable_cpus(); }

  // `strict` (eval): task-specific flags go through, so a flag of another task is refused.
  // Otherwise (a sweep over several tasks) each applies to its own task only.
  eval::EvalOptions options(eval::Task task, const std::string& manifest, bool strict) const {
    eval::EvalOptions o;
    o.task = task;
    o.manifest = manifest;
    o.root = root;
    o.frames = frames;
    o.size = size;
    o.batch_size = batch_size > 0 ? batch_size : 32;
    o.threads = resolved_threads();
    o.captions = eval::parse_caption_use(captions, "--captions");
    o.dsl = (strict || task == eval::Task::Retrieval) && dsl;
    o.dsl_scale = dsl_scale;
    if (strict || task == eval::Task::Classification) {
      o.classes_file = labels;
      o.templates_file = templates;
    }
    o.progress = !no_progress;
    return o;
  }

  eval::ModelSpec model(const std::string& checkpoint) const {
    HARVEST_REQUIRE(wise_ft_alpha <= 1.0, Usage, "--wise-ft-alpha ", wise_ft_alpha,
                    ": must be in [0, 1]");
    HARVEST_REQUIRE(base_checkpoint.empty() || wise_ft_alpha > 0, Usage,
                    "--base-checkpoint is only used with --wise-ft-alpha > 0");
    return eval::ModelSpec{checkpoint, vocab, std::max(0.0, wise_ft_alpha), base_checkpoint,
                           device};
  }
};

struct EvalArgs {
  TaskArgs common;
  std::string checkpoint, task, manifest, save_embeddings;
  bool json = false;
};

void run_eval(const EvalArgs& args) {
  const eval::Task task = eval::parse_task(args.task, "--task");
  eval::EvalOptions options = args.common.options(task, args.manifest, true);
  options.save_embeddings = args.save_embeddings;
  eval::check_options(options);
  at::set_num_threads(options.threads);
  eval::EvalModel model = eval::load_eval_model(args.common.model(args.checkpoint));
  const nlohmann::ordered_json result = eval::evaluate(model, options);
  std::cout << eval::format_result(result);
  if (args.json) std::cout << result.dump() << "\n";
  std::cout << std::flush;
}

struct SweepArgs {
  TaskArgs common;
  std::string run_dir, checkpoints, out;
  std::vector<std::string> tasks, manifests;
  bool watch = false;
  double poll_s = 30.0;
  std::string coordinator;  // set: an eval member taking jobs from the coordinator
};

// The run's commit marker; nullopt when there is none yet, or it is being replaced this very
// moment (the next look decides).
std::optional<checkpoint::Manifest> committed_now(const eval::SweepOptions& options) {
  try {
    return checkpoint::read_manifest(eval::checkpoint_dir_of(options));
  } catch (const Error&) {
    return std::nullopt;
  }
}

// The run's last step is committed (train.steps of its config.toml): no checkpoint will follow.
bool run_finished(const eval::SweepOptions& options, const std::optional<Config>& config) {
  if (!config) return false;
  const auto manifest = committed_now(options);
  return manifest && !manifest->committed.empty() &&
         manifest->committed.front().step >= config->train.steps;
}

// Whether the run's commit marker lists `name` (a step folder) as committed.
bool committed_in(const eval::SweepOptions& options, const std::string& name) {
  const auto manifest = committed_now(options);
  if (!manifest) return false;
  for (const auto& c : manifest->committed)
    if (c.name == name) return true;
  return false;
}

void print_sweep_summary(const eval::SweepSummary& s) {
  std::cout << "harvest sweep: " << s.evaluated.size() << " evaluation(s) run, " << s.already_done
            << " already done, " << s.failed.size() << " failed\n";
  for (const std::string& f : s.failed) std::cout << "  failed: " << f << "\n";
  std::cout << "  " << s.results_json.string() << "\n  " << s.results_csv.string() << "\n  "
            << s.plots.size() << " plots in " << (s.results_json.parent_path() / "plots").string()
            << "\n";
  nlohmann::ordered_json plots = nlohmann::ordered_json::array();
  for (const auto& p : s.plots) plots.push_back(p.string());
  std::cout << nlohmann::ordered_json{{"evaluated_steps", s.evaluated},
                                      {"already_done", s.already_done},
                                      {"failed", s.failed},
                                      {"results_json", s.results_json.string()},
                                      {"results_csv", s.results_csv.string()},
                                      {"plots", plots}}
                   .dump()
            << std::endl;
}

// One evalJob: the sweep restricted to `checkpoint` (a committed step folder), answered with the
// step's flat metrics ("<task>.<metric>") as results.json holds them (evaluated now, by another
// writer, or earlier) or the first failure. `give_up`: stop waiting for the commit marker.
// `summary` (an eval member's console; a spare worker logs its own line): what the sweep ran.
SpareEvalOutcome evaluate_job(const eval::SweepOptions& base, const std::string& checkpoint,
                              const std::function<bool()>& give_up, std::ostream* summary = nullptr) {
  eval::SweepOptions options = base;
  options.only_checkpoint = fs::path(checkpoint).filename().string();
  // The coordinator announces a commit as soon as its journal holds it; rank 0 writes the
  // checkpoint folder's commit marker right after. Give it that moment.
  const Deadline marker = Deadline::after_seconds(30);
  while (!committed_in(base, options.only_checkpoint) && !marker.expired() && !give_up())
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  SpareEvalOutcome outcome;
  const eval::SweepSummary s = eval::run_sweep(options);
  if (!s.failed.empty()) outcome.error = s.failed.front();
  const nlohmann::ordered_json results =
      eval::read_sweep_results(eval::out_dir_of(base) / "results.json");
  for (const auto& record : results.at("records"))
    if (record.at("checkpoint") == options.only_checkpoint)
      for (const auto& [name, value] : record.at("metrics").items())
        outcome.metrics.emplace_back(record.at("task").get<std::string>() + "." + name,
                                     value.get<double>());
  if (summary)
    *summary << "harvest sweep: " << options.only_checkpoint << ": " << s.evaluated.size()
             << " evaluation(s) run, " << s.failed.size() << " failed" << std::endl;
  return outcome;
}

// `harvest sweep RUN_DIR --coordinator ADDR`: an eval member. Registers with the coordinator (role
// eval) and evaluates each checkpoint the coordinator's sweeper hands it (evalJob), as a sweep
// restricted to that step folder, answering evalResult with the flat metrics ("<task>.<metric>").
// Once the run's final step is committed and no job came for a few seconds, a last plain sweep
// pass picks up anything the coordinator did not hand out (e.g. across its restart), then it
// exits 0. SIGINT/SIGTERM: after the evaluation in progress.
void run_sweep_member(const eval::SweepOptions& base, const std::optional<Config>& config,
                      const std::string& address) {
  coord::SignalWatcher signals;
  coord::ClientOptions client_options =
      config ? coord::client_options(*config, proto::Role::EVAL) : coord::ClientOptions{};
  client_options.role = proto::Role::EVAL;
  client_options.address = address;
  coord::CoordinatorClient client(client_options);
  std::cout << "harvest sweep: evaluating the checkpoints the coordinator at " << address
            << " hands out" << std::endl;
  auto idle_since = std::chrono::steady_clock::now();
  while (signals.stop().load() == 0) {
    auto event = client.next_event(std::chrono::milliseconds(200));
    if (!event) {
      const auto idle = std::chrono::steady_clock::now() - idle_since;
      if (idle > std::chrono::seconds(3) && run_finished(base, config)) {
        eval::SweepSummary last = eval::run_sweep(base);
        print_sweep_summary(last);
        break;
      }
      continue;
    }
    const coord::InMessage& message = **event;
    if (message.which() == coord::Body::SHUTDOWN) break;
    if (message.which() != coord::Body::EVAL_JOB) continue;
    const auto job = message.body().getEvalJob();
    const std::string checkpoint = job.getCheckpoint().cStr();
    coord::Progress busy;
    busy.state = proto::MemberState::EVALUATING;
    busy.step = job.getStep();
    client.set_progress(busy);
    SpareEvalOutcome outcome;
    try {
      outcome = evaluate_job(base, checkpoint, [&] { return signals.stop().load() != 0; }, &std::cout);
    } catch (const Error& e) {
      outcome.error = e.what();
      std::cout << "harvest sweep: " << checkpoint << ": " << e.what() << std::endl;
    }
    client.send_eval_result(job.getJobId(), outcome.metrics, outcome.error);
    client.set_progress(coord::Progress{});
    idle_since = std::chrono::steady_clock::now();
  }
  client.leave(signals.stop().load() ? "stopped by a signal" : "sweep done", /*clean=*/true);
}

// The run's [eval] section under the flags: what a flag leaves unset comes from the config.
void apply_run_defaults(SweepArgs& args, const Config& config) {
  const EvalConfig& e = config.eval;
  if (args.tasks.empty()) args.tasks = e.tasks;
  if (args.manifests.empty() && !e.manifest.empty()) args.manifests = {e.manifest};
  if (args.common.frames == 0) args.common.frames = e.frames;
  if (args.common.batch_size == 0) args.common.batch_size = e.batch_size;
  if (args.common.wise_ft_alpha < 0 && e.wise_ft_alpha > 0) {
    args.common.wise_ft_alpha = e.wise_ft_alpha;
    args.common.base_checkpoint = e.wise_ft_base;
  }
  if (args.common.labels.empty()) args.common.labels = e.classes;
  if (args.common.templates.empty()) args.common.templates = e.templates;
}

// The sweep the arguments describe; `config_file` names where defaults would have come from.
eval::SweepOptions sweep_options(SweepArgs args, const std::string& config_file) {
  if (args.tasks.empty()) args.tasks = {"retrieval"};
  HARVEST_REQUIRE(!args.manifests.empty(), Usage,
                  "sweep: no eval manifest: pass --manifest or set eval.manifest in ", config_file);
  HARVEST_REQUIRE(args.manifests.size() == 1 || args.manifests.size() == args.tasks.size(), Usage,
                  "sweep: ", args.manifests.size(), " --manifest for ", args.tasks.size(),
                  " --task (give one for all tasks, or one per task in the same order)");
  eval::SweepOptions options;
  options.run_dir = args.run_dir;
  options.checkpoint_dir = args.checkpoints;
  options.out_dir = args.out;
  options.model = args.common.model("");
  for (size_t i = 0; i < args.tasks.size(); ++i) {
    const eval::Task task = eval::parse_task(args.tasks[i], "--task");
    options.tasks.push_back(
        args.common.options(task, args.manifests[args.manifests.size() == 1 ? 0 : i], false));
  }
  return options;
}

void run_sweep(SweepArgs args) {
  // Defaults from the run's [eval] section; flags win.
  const fs::path config_file = fs::path(args.run_dir) / "config.toml";
  std::optional<Config> config;
  if (fs::exists(config_file)) config = load_config(config_file.string(), {});
  if (config) apply_run_defaults(args, *config);
  const eval::SweepOptions options = sweep_options(args, config_file.string());
  HARVEST_REQUIRE(args.poll_s > 0, Usage, "sweep: --poll-s must be positive, got ", args.poll_s);
  if (!args.coordinator.empty()) {
    HARVEST_REQUIRE(!args.watch, Usage, "sweep: --watch and --coordinator exclude each other");
    at::set_num_threads(args.common.resolved_threads());
    return run_sweep_member(options, config, args.coordinator);
  }
  // --watch: a pass every poll_s while the run trains, a last one once its final step is
  // committed (looked at before each pass, so that pass includes it); SIGINT/SIGTERM end it
  // after the evaluation in progress.
  std::optional<coord::SignalWatcher> signals;
  if (args.watch) {
    signals.emplace();
    std::cout << "harvest sweep: watching " << args.run_dir << " until "
              << (config ? "step " + std::to_string(config->train.steps) + " is committed"
                         : std::string("SIGINT/SIGTERM (no config.toml, so no final step)"))
              << ", a look every " << args.poll_s << " s" << std::endl;
  }
  at::set_num_threads(args.common.resolved_threads());
  eval::SweepSummary s;
  while (true) {
    const bool last = !args.watch || run_finished(options, config);
    s = eval::run_sweep(options);
    // Watching prints the passes that did something, and the last one.
    if (!args.watch || last || !s.evaluated.empty() || !s.failed.empty()) print_sweep_summary(s);
    if (last) break;
    const Deadline next = Deadline::after_seconds(args.poll_s);
    while (!next.expired() && signals->stop().load() == 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (signals->stop().load() != 0) {
      std::cout << "harvest sweep: stopped by signal " << signals->stop().load() << std::endl;
      print_sweep_summary(s);
      break;
    }
  }
  HARVEST_REQUIRE(s.failed.empty(), Runtime, "sweep: ", s.failed.size(),
                  " evaluation(s) failed (listed above)");
}

}  // namespace

SpareEvaluator spare_evaluator(const Config& config) {
  return [config](const std::string& checkpoint, const std::string& device,
                  const std::atomic<bool>& cancel) {
    SpareEvalOutcome outcome;
    try {
      HARVEST_REQUIRE(!config.eval.manifest.empty(), Config,
                      "eval.manifest is not set in this worker's config: nothing to evaluate");
      SweepArgs args;
      args.run_dir = config.logging.run_dir;
      args.checkpoints = checkpoint::checkpoint_dir(config).string();
      args.common.device = device;
      args.common.threads = config.train.threads > 0 ? static_cast<int>(config.train.threads) : 0;
      apply_run_defaults(args, config);
      eval::SweepOptions options = sweep_options(args, "this worker's config");
      options.cancel = &cancel;
      outcome = evaluate_job(options, checkpoint, [&] { return cancel.load(); });
    } catch (const eval::Cancelled&) {
      outcome.cancelled = true;
    } catch (const Error& e) {
      outcome.error = e.what();
    }
    return outcome;
  };
}

void add_eval_commands(CLI::App& app) {
  auto ev = std::make_shared<EvalArgs>();
  auto* e = app.add_subcommand(
      "eval", "Zero-shot retrieval, classification or multiple-choice QA of one checkpoint");
  e->add_option("--checkpoint", ev->checkpoint,
                "Model file, run checkpoint directory or step folder")
      ->required();
  e->add_option("--task", ev->task, "retrieval, classification or mcqa")->required();
  e->add_option("--manifest", ev->manifest,
                "Eval manifest (JSONL/CSV; mcqa: JSONL with candidates/answer)")
      ->required();
  e->add_option("--save-embeddings", ev->save_embeddings,
                "Write /video, /text, /text_to_video ... (HDF5)");
  e->add_flag("--json", ev->json, "Print the whole result as JSON on the last line");
  ev->common.add_to(*e);
  e->callback([ev] { run_eval(*ev); });

  auto sw = std::make_shared<SweepArgs>();
  auto* s =
      app.add_subcommand("sweep", "Evaluate every committed checkpoint of a run not yet evaluated");
  s->add_option("run_dir", sw->run_dir, "The run's folder (logging.run_dir)")->required();
  s->add_option("--task", sw->tasks, "Task (repeatable; default: the run's eval.tasks)");
  s->add_option("--manifest", sw->manifests,
                "Eval manifest: one for all tasks or one per --task (default eval.manifest)");
  s->add_option("--checkpoints", sw->checkpoints,
                "Checkpoint directory (default RUN_DIR/checkpoints)");
  s->add_option("--out", sw->out, "Results folder (default RUN_DIR/eval)");
  s->add_flag("--watch", sw->watch,
              "Keep evaluating new checkpoints while the run trains; end after its final step "
              "(train.steps of RUN_DIR/config.toml) or on SIGINT/SIGTERM");
  s->add_option("--poll-s", sw->poll_s, "With --watch: seconds between looks for new checkpoints")
      ->capture_default_str();
  s->add_option("--coordinator", sw->coordinator,
                "Take evaluation jobs from the coordinator at ADDR while the run trains (committed "
                "steps at multiples of eval.every_steps, and the last); exit once the last is done");
  sw->common.add_to(*s);
  s->callback([sw] { run_sweep(*sw); });
}

}  // namespace harvest::cli
