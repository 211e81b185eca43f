// The run report (`harvest report RUN_DIR`): one self-contained HTML page (inline SVG charts, no
// scripts, no external files) with what a person checks after a run: the training curves from
// <run>/metrics.jsonl (loss parts, learning rate, temperature, throughput, data wait and
// communication share, gradient norm), every eval metric against step and the results table from
// the sweep's <run>/eval/results.json, the before/after comparison (first and last evaluated
// step), and the run's resolved config.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace harvest::eval {

// One training step's record from metrics.jsonl (lines with "step" and "loss").
struct StepRecord {
  nlohmann::json fields;
  int64_t step = 0;
};

// Reads <run>/metrics.jsonl (rank 0's step records where several ranks wrote). A line that is not a JSON object throws Runtime naming file:line;
// an unterminated last line (a run killed mid-write) is ignored with a warning.
std::vector<StepRecord> read_step_metrics(const std::filesystem::path& metrics_file);

struct ReportSummary {
  std::filesystem::path html;
  int64_t steps = 0;         // training step records found
  int64_t eval_records = 0;  // sweep records found
  int charts = 0;
  nlohmann::ordered_json numbers;  // report_summary() of the run
};

// Writes <run>/report.html atomically. Throws Usage when the folder has neither metrics.jsonl nor
// eval results (nothing to report), Runtime naming the file for a malformed input.
ReportSummary write_run_report(const std::filesystem::path& run_dir);

// The report's summary numbers (also the last line `harvest report` prints): steps, train_seconds
// (sum of step times), clips_per_s and data_wait_fraction over the second half of the run (after
// warm-up), train_wall_seconds (span of the records' clocks), eval_seconds (sum over the sweep's
// records), final loss parts, and per eval metric its value at the first and last evaluated step;
// with a single eval setting, each metric also as top-level <metric>_before / <metric>_after.
nlohmann::ordered_json report_summary(const std::vector<StepRecord>& steps,
                                      const nlohmann::ordered_json& results);

// The before/after comparison as a plain-text table (one block per eval setting: metric, value at
// the first evaluated step, value at the last), for the console; empty without eval results.
std::string before_after_text(const nlohmann::ordered_json& summary);

}  // namespace harvest::eval
