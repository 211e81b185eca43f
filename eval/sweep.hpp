// Checkpoint sweeps (`harvest sweep RUN_DIR`): every committed checkpoint of a run, evaluated on
// every requested task once. Resumable: results live in <out>/results.json, rewritten atomically
// after each (checkpoint, task) and merged under a lock file, so several writers (sweeps, eval
// members, spare workers) can share the folder; a (checkpoint, task, settings) already there is
// skipped, so a sweep re-run while training goes on evaluates only the new checkpoints.
// results.csv and one SVG chart per metric against step are regenerated from results.json.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eval/evaluate.hpp"

namespace harvest::eval {

struct SweepOptions {
  std::filesystem::path run_dir;
  std::filesystem::path checkpoint_dir;  // empty: <run_dir>/checkpoints
  std::filesystem::path out_dir;         // empty: <run_dir>/eval
  std::vector<EvalOptions> tasks;        // one eval per task per checkpoint
  ModelSpec model;                       // checkpoint is filled in per checkpoint
  std::string only_checkpoint;           // a step folder name (step-...): only that one
  const std::atomic<bool>* cancel = nullptr;  // set: checked between batches (throws Cancelled)
};

struct SweepSummary {
  std::vector<int64_t> evaluated;   // steps evaluated now (one entry per task)
  int64_t already_done = 0;         // (checkpoint, task) pairs found in results.json
  std::vector<std::string> failed;  // "step-...: task: reason"
  std::filesystem::path results_json, results_csv;
  std::vector<std::filesystem::path> plots;
};

// Where a sweep reads checkpoints (<run_dir>/checkpoints unless set) and writes its results
// (<run_dir>/eval unless set).
std::filesystem::path checkpoint_dir_of(const SweepOptions& options);
std::filesystem::path out_dir_of(const SweepOptions& options);

// Reads <out>/results.json when present (throws Runtime naming it when it is not a sweep record).
nlohmann::ordered_json read_sweep_results(const std::filesystem::path& file);

// The settings that make two results comparable (task, manifest, frames, size, captions, scoring,
// WiSE-FT, classes/templates): a result with the same checkpoint and key is not evaluated again.
std::string sweep_setting_key(const EvalOptions& options, const ModelSpec& model);

// Metric names over all records, in first-appearance order.
std::vector<std::string> metric_names(const nlohmann::ordered_json& results);

// The records sorted by (label, step): the order of results.csv, the report's table and charts.
std::vector<nlohmann::ordered_json> records_by_label_and_step(
    const nlohmann::ordered_json& results);

// One metric against step as an SVG chart, a line per label; `rows` as records_by_label_and_step()
// returns them.
std::string metric_chart_svg(const std::vector<nlohmann::ordered_json>& rows,
                             const std::string& metric);

// Flattens a result's metrics: t2v.r1 -> "t2v_r1", dsl.v2t.medr -> "dsl_v2t_medr", top1, accuracy.
std::vector<std::pair<std::string, double>> flat_metrics(const nlohmann::ordered_json& result);

SweepSummary run_sweep(const SweepOptions& options);

}  // namespace harvest::eval
