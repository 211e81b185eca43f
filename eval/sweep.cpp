#include "eval/sweep.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "checkpoint/commit.hpp"
#include "checkpoint/durable_file.hpp"
#include "core/json.hpp"
#include "core/error.hpp"
#include "core/svg_plot.hpp"

namespace harvest::eval {

namespace fs = std::filesystem;
namespace ck = harvest::checkpoint;
using ojson = nlohmann::ordered_json;

namespace {

std::string absolute_or_empty(const std::string& path) {
  return path.empty() ? std::string() : fs::weakly_canonical(fs::absolute(path)).string();
}

// Writers of one output folder (sweeps, eval members, spare workers) take turns: each holds the
// lock only to merge its new record into results.json and rewrite the outputs, so several may
// evaluate at once and none loses another's record. A writer that cannot get the lock within
// kLockWait (a stuck process holding it) fails naming the lock file.
constexpr auto kLockWait = std::chrono::seconds(120);

class FolderLock {
 public:
  explicit FolderLock(const fs::path& dir) {
    const std::string path = (dir / ".sweep.lock").string();
    fd_ = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    HARVEST_REQUIRE(fd_ >= 0, Runtime, path, ": cannot open the sweep lock");
    const auto deadline = std::chrono::steady_clock::now() + kLockWait;
    while (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      if (std::chrono::steady_clock::now() >= deadline) {
        ::close(fd_);
        fail(ErrorKind::Runtime, path, ": another writer of ", dir.string(), " held the lock for over ",
             kLockWait.count(), " s");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  ~FolderLock() { ::close(fd_); }
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;

 private:
  int fd_ = -1;
};

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string number(double v) {
  std::ostringstream out;
  out.precision(10);
  out << v;
  return out.str();
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void flatten(const std::string& prefix, const ojson& j,
             std::vector<std::pair<std::string, double>>& out) {
  for (const auto& [key, value] : j.items()) {
    if (key == "queries") continue;  // a count, not a metric
    const std::string name = prefix.empty() ? key : prefix + "_" + key;
    if (value.is_object())
      flatten(name, value, out);
    else if (value.is_number())
      out.emplace_back(name, value.get<double>());
  }
}

void write_outputs(const ojson& results, const fs::path& out_dir, SweepSummary& summary) {
  summary.results_json = out_dir / "results.json";
  ck::write_file_atomically(summary.results_json, results.dump(2) + "\n");

  const std::vector<std::string> metrics = metric_names(results);
  const std::vector<ojson> rows = records_by_label_and_step(results);
  std::string csv = "step,checkpoint,task,label";
  for (const std::string& m : metrics) csv += "," + m;
  csv += ",setting\n";
  for (const ojson& r : rows) {
    csv += cat(r["step"].get<int64_t>(), ",", csv_field(r["checkpoint"].get<std::string>()), ",",
               r["task"].get<std::string>(), ",", csv_field(r["label"].get<std::string>()));
    for (const std::string& m : metrics)
      csv +=
          "," + (r["metrics"].contains(m) ? number(r["metrics"][m].get<double>()) : std::string());
    csv += "," + csv_field(r["setting"].get<std::string>()) + "\n";
  }
  summary.results_csv = out_dir / "results.csv";
  ck::write_file_atomically(summary.results_csv, csv);

  summary.plots.clear();
  fs::create_directories(out_dir / "plots");
  for (const std::string& m : metrics) {
    const fs::path file = out_dir / "plots" / (m + ".svg");
    ck::write_file_atomically(file, metric_chart_svg(rows, m));
    summary.plots.push_back(file);
  }
}

std::string record_label(const ojson& result) {
  const ojson& p = result["protocol"];
  std::string label =
      cat(result["task"].get<std::string>(), " ", p["dataset"]["split"].get<std::string>(), " ",
          p["frames"].get<int64_t>(), "f");
  if (p.contains("captions") && p["captions"]["use"] == "first") label += " 1cap";
  if (p["wise_ft"]["alpha"].get<double>() > 0)
    label += cat(" wise", p["wise_ft"]["alpha"].get<double>());
  return label;
}

}  // namespace

std::vector<std::string> metric_names(const ojson& results) {
  std::vector<std::string> metrics;
  for (const auto& rec : results["records"])
    for (const auto& [key, value] : rec["metrics"].items())
      if (std::find(metrics.begin(), metrics.end(), key) == metrics.end()) metrics.push_back(key);
  return metrics;
}

std::vector<ojson> records_by_label_and_step(const ojson& results) {
  std::vector<ojson> rows(results["records"].begin(), results["records"].end());
  std::stable_sort(rows.begin(), rows.end(), [](const ojson& a, const ojson& b) {
    return std::make_tuple(a["label"].get<std::string>(), a["step"].get<int64_t>()) <
           std::make_tuple(b["label"].get<std::string>(), b["step"].get<int64_t>());
  });
  return rows;
}

std::string metric_chart_svg(const std::vector<ojson>& rows, const std::string& metric) {
  std::map<std::string, Series> by_label;
  for (const ojson& r : rows) {
    if (!r["metrics"].contains(metric)) continue;
    Series& s = by_label[r["label"].get<std::string>()];
    s.name = r["label"].get<std::string>();
    s.x.push_back(static_cast<double>(r["step"].get<int64_t>()));
    s.y.push_back(r["metrics"][metric].get<double>());
  }
  std::vector<Series> series;
  for (auto& [label, s] : by_label) series.push_back(std::move(s));
  ChartOptions chart;
  chart.title = metric + " against step";
  const size_t n = metric.size();
  const bool rank = n > 4 && (metric.rfind("medr") == n - 4 || metric.rfind("meanr") == n - 5);
  chart.y_label = rank ? "rank" : "%";
  return line_chart_svg(series, chart);
}

ojson read_sweep_results(const fs::path& file) {
  const std::optional<std::string> text = ck::read_small_file(file);
  if (!text) return ojson{{"records", ojson::array()}};
  const ojson j = parse_json_or_discarded<ojson>(*text);
  HARVEST_REQUIRE(
      !j.is_discarded() && j.is_object() && j.contains("records") && j["records"].is_array(),
      Runtime, file.string(), ": not a sweep results file (expected {\"records\": [...]})");
  for (const auto& r : j["records"])
    HARVEST_REQUIRE(
        r.is_object() && r.contains("checkpoint") && r.contains("setting") && r.contains("step") &&
            r.contains("metrics") && r.contains("label") && r.contains("task"),
        Runtime, file.string(),
        ": a record lacks checkpoint/setting/step/metrics/label/task: ", r.dump().substr(0, 200));
  return j;
}

std::string sweep_setting_key(const EvalOptions& o, const ModelSpec& model) {
  ojson key{{"task", task_name(o.task)},
            {"manifest", absolute_or_empty(o.manifest)},
            {"root", absolute_or_empty(o.root)},
            {"frames", o.frames},
            {"size", o.size}};
  if (o.task == Task::Retrieval) {
    key["captions"] = caption_use_name(o.captions);
    key["dsl"] = o.dsl ? o.dsl_scale : 0.0;
  }
  if (o.task == Task::Classification) {
    key["classes"] = absolute_or_empty(o.classes_file);
    key["templates"] = absolute_or_empty(o.templates_file);
  }
  key["wise_ft_alpha"] = model.wise_ft_alpha;
  if (model.wise_ft_alpha > 0) key["wise_ft_base"] = absolute_or_empty(model.base_checkpoint);
  return key.dump();
}

std::vector<std::pair<std::string, double>> flat_metrics(const ojson& result) {
  std::vector<std::pair<std::string, double>> out;
  for (const char* key : {"t2v", "v2t", "dsl", "top1", "top5", "mean_class_top1", "accuracy"}) {
    if (!result.contains(key)) continue;
    if (result[key].is_object())
      flatten(key, result[key], out);
    else
      out.emplace_back(key, result[key].get<double>());
  }
  return out;
}

fs::path checkpoint_dir_of(const SweepOptions& options) {
  return options.checkpoint_dir.empty() ? options.run_dir / "checkpoints" : options.checkpoint_dir;
}

fs::path out_dir_of(const SweepOptions& options) {
  return options.out_dir.empty() ? options.run_dir / "eval" : options.out_dir;
}

SweepSummary run_sweep(const SweepOptions& options) {
  HARVEST_REQUIRE(!options.tasks.empty(), Usage, "sweep: no task to run (give --task)");
  const fs::path ck_dir = checkpoint_dir_of(options);
  HARVEST_REQUIRE(fs::is_directory(ck_dir), Usage, ck_dir.string(),
                  ": no checkpoint directory (pass the run folder, or --checkpoints DIR)");
  const fs::path out_dir = out_dir_of(options);
  // Bad manifests, class or template files fail now, not after the first checkpoint.
  for (const EvalOptions& t : options.tasks) {
    check_options(t);
    if (t.task == Task::Retrieval) load_retrieval_set(t.manifest, t.root, t.captions);
    if (t.task == Task::Classification)
      load_classification_set(t.manifest, t.root, t.classes_file, t.templates_file);
    if (t.task == Task::Mcqa) load_mcqa_set(t.manifest, t.root);
  }
  fs::create_directories(out_dir);

  SweepSummary summary;
  ojson results = read_sweep_results(out_dir / "results.json");
  std::set<std::pair<std::string, std::string>> done;
  for (const auto& r : results["records"])
    done.emplace(r["checkpoint"].get<std::string>(), r["setting"].get<std::string>());

  const std::optional<ck::Manifest> manifest = ck::read_manifest(ck_dir);
  std::vector<ck::CommittedCheckpoint> committed;
  if (manifest)
    committed.assign(manifest->committed.rbegin(), manifest->committed.rend());  // oldest first
  if (committed.empty())
    spdlog::warn("sweep: {} holds no committed checkpoint yet", ck_dir.string());

  if (!options.only_checkpoint.empty()) {
    std::vector<ck::CommittedCheckpoint> only;
    for (const auto& c : committed)
      if (c.name == options.only_checkpoint) only.push_back(c);
    if (only.empty()) {
      summary.failed.push_back(options.only_checkpoint +
                               ": not a committed checkpoint (retention may have removed it)");
      spdlog::warn("sweep: {}", summary.failed.back());
    }
    committed = only;
  }
  for (const ck::CommittedCheckpoint& c : committed) {
    throw_if_cancelled(options.cancel, "before " + c.name);
    std::vector<const EvalOptions*> pending;
    for (const EvalOptions& t : options.tasks) {
      if (done.count({c.name, sweep_setting_key(t, options.model)}))
        ++summary.already_done;
      else
        pending.push_back(&t);
    }
    if (pending.empty()) {
      spdlog::info("sweep: {} already evaluated", c.name);
      continue;
    }
    if (const auto problem = ck::check_committed(ck_dir, c, ck::VerifyLevel::Sizes)) {
      spdlog::warn("sweep: {} skipped: {}", c.name, *problem);
      summary.failed.push_back(c.name + ": " + *problem);
      continue;
    }
    ModelSpec spec = options.model;
    spec.checkpoint = (ck_dir / c.name).string();
    std::optional<EvalModel> model;
    try {
      model.emplace(load_eval_model(spec));
    } catch (const Error& e) {
      spdlog::error("sweep: {} not evaluated: {}", c.name, e.what());
      summary.failed.push_back(c.name + ": " + e.what());
      continue;
    }
    for (const EvalOptions* pending_task : pending) {
      EvalOptions task = *pending_task;
      task.cancel = options.cancel;
      ojson result;
      const auto started = std::chrono::steady_clock::now();
      try {
        result = evaluate(*model, task);
      } catch (const Error& e) {
        spdlog::error("sweep: {} {}: {}", c.name, task_name(task.task), e.what());
        summary.failed.push_back(cat(c.name, ": ", task_name(task.task), ": ", e.what()));
        continue;
      }
      ojson metrics = ojson::object();
      for (const auto& [name, value] : flat_metrics(result)) metrics[name] = value;
      const std::string key = sweep_setting_key(task, options.model);
      // Merged into what the folder holds now: another writer may have added records meanwhile.
      const FolderLock lock(out_dir);
      results = read_sweep_results(out_dir / "results.json");
      const bool raced = std::any_of(results["records"].begin(), results["records"].end(), [&](const ojson& r) {
        return r["checkpoint"] == c.name && r["setting"] == key;
      });
      if (raced) {
        spdlog::info("sweep: {} {}: another writer recorded it first; its record is kept", c.name,
                     task_name(task.task));
        ++summary.already_done;
        continue;
      }
      results["records"].push_back(ojson{{"checkpoint", c.name},
                                         {"step", c.step},
                                         {"task", task_name(task.task)},
                                         {"label", record_label(result)},
                                         {"setting", key},
                                         {"metrics", metrics},
                                         {"seconds", seconds_since(started)},
                                         {"result", result}});
      done.emplace(c.name, key);
      summary.evaluated.push_back(c.step);
      write_outputs(results, out_dir,
                    summary);  // after every result: a killed sweep loses one eval
      spdlog::info("sweep: {} {} done ({})", c.name, task_name(task.task), record_label(result));
    }
  }
  const FolderLock lock(out_dir);
  write_outputs(read_sweep_results(out_dir / "results.json"), out_dir, summary);
  return summary;
}

}  // namespace harvest::eval
