#include "eval/report.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <iomanip>
#include <map>
#include <sstream>

#include "checkpoint/durable_file.hpp"
#include "core/json.hpp"
#include "core/error.hpp"
#include "core/svg_plot.hpp"
#include "eval/sweep.hpp"

namespace harvest::eval {

namespace fs = std::filesystem;
namespace ck = harvest::checkpoint;
using ojson = nlohmann::ordered_json;

namespace {

double field(const StepRecord& r, const char* key) {
  const auto it = r.fields.find(key);
  return it != r.fields.end() && it->is_number() ? it->get<double>() : std::nan("");
}

Series series_of(const std::vector<StepRecord>& steps, const std::string& name,
                 const std::function<double(const StepRecord&)>& value) {
  Series s;
  s.name = name;
  for (const StepRecord& r : steps) {
    s.x.push_back(static_cast<double>(r.step));
    s.y.push_back(value(r));
  }
  return s;
}

Series series_of(const std::vector<StepRecord>& steps, const char* key) {
  return series_of(steps, key, [key](const StepRecord& r) { return field(r, key); });
}

std::string format_number(double v) {
  if (!std::isfinite(v)) return "-";
  std::ostringstream out;
  out.precision(std::fabs(v) >= 100 ? 5 : 4);
  out << v;
  return out.str();
}

// The training curves, each a chart only when the metric is in the records.
std::vector<std::string> training_charts(const std::vector<StepRecord>& steps) {
  const auto has = [&](const char* key) {
    return std::any_of(steps.begin(), steps.end(),
                       [&](const StepRecord& r) { return std::isfinite(field(r, key)); });
  };
  std::vector<std::string> charts;
  const auto chart = [&](std::vector<Series> series, const std::string& title,
                         const std::string& y_label, bool log_y = false) {
    ChartOptions o;
    o.title = title;
    o.y_label = y_label;
    o.log_y = log_y;
    charts.push_back(line_chart_svg(series, o));
  };
  std::vector<Series> losses;
  for (const char* key : {"loss", "vtc", "mlm"})
    if (has(key)) losses.push_back(series_of(steps, key));
  if (!losses.empty()) chart(losses, "Loss parts", "loss");
  if (has("lr")) chart({series_of(steps, "lr")}, "Learning rate", "lr");
  if (has("temperature"))
    chart({series_of(steps, "temperature")}, "Contrastive temperature", "temperature");
  if (has("clips_per_s")) chart({series_of(steps, "clips_per_s")}, "Throughput", "clips/s");
  std::vector<Series> waits;
  if (has("data_wait_fraction")) waits.push_back(series_of(steps, "data_wait_fraction"));
  if (has("comm_wait_s") && has("step_s"))
    waits.push_back(series_of(steps, "comm_fraction", [](const StepRecord& r) {
      return field(r, "comm_wait_s") / field(r, "step_s");
    }));
  if (!waits.empty()) chart(waits, "Waiting for data and communication", "fraction of step time");
  if (has("grad_norm"))
    chart({series_of(steps, "grad_norm")}, "Gradient norm (before clipping)", "norm", true);
  return charts;
}

std::string table_html(const std::vector<std::string>& header,
                       const std::vector<std::vector<std::string>>& rows) {
  std::string html = "<table><thead><tr>";
  for (const std::string& h : header) html += "<th>" + xml_escape(h) + "</th>";
  html += "</tr></thead><tbody>\n";
  for (const auto& row : rows) {
    html += "<tr>";
    for (const std::string& cell : row) html += "<td>" + xml_escape(cell) + "</td>";
    html += "</tr>\n";
  }
  return html + "</tbody></table>\n";
}

std::string results_table(const ojson& results) {
  const std::vector<std::string> metrics = metric_names(results);
  std::vector<std::string> header = {"setting", "step"};
  header.insert(header.end(), metrics.begin(), metrics.end());
  std::vector<std::vector<std::string>> rows;
  for (const ojson& rec : records_by_label_and_step(results)) {
    std::vector<std::string> row = {rec["label"].get<std::string>(),
                                    std::to_string(rec["step"].get<int64_t>())};
    for (const std::string& m : metrics)
      row.push_back(rec["metrics"].contains(m) ? format_number(rec["metrics"][m].get<double>())
                                               : "-");
    rows.push_back(std::move(row));
  }
  return table_html(header, rows);
}

const char* kStyle = R"(
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1600px; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead { background: #f0f0f0; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.charts svg { border: 1px solid #e4e4e4; background: #fff; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
.note { color: #666; }
)";

}  // namespace

std::vector<StepRecord> read_step_metrics(const fs::path& metrics_file) {
  std::ifstream in(metrics_file, std::ios::binary);
  HARVEST_REQUIRE(in, Runtime, metrics_file.string(), ": cannot open");
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  std::vector<StepRecord> steps;
  size_t begin = 0;
  int64_t line_number = 0;
  while (begin < text.size()) {
    ++line_number;
    const size_t end = text.find('\n', begin);
    if (end == std::string::npos) {
      spdlog::warn("{}:{}: unterminated last line ignored (the run was stopped while writing it)",
                   metrics_file.string(), line_number);
      break;
    }
    const std::string line = text.substr(begin, end - begin);
    begin = end + 1;
    if (line.empty()) continue;
    nlohmann::json j = parse_json_or_discarded(line);
    HARVEST_REQUIRE(!j.is_discarded() && j.is_object(), Runtime, metrics_file.string(), ":",
                    line_number, ": not a JSON object");
    if (!j.contains("step") || !j["step"].is_number_integer() || !j.contains("loss")) continue;
    // Every rank writes its steps; rank 0's stand for the run (the others repeat its numbers).
    if (j.contains("rank") && j["rank"].is_number_integer() && j["rank"].get<int64_t>() != 0)
      continue;
    const int64_t step = j["step"].get<int64_t>();
    steps.push_back({std::move(j), step});
  }
  return steps;
}

ojson report_summary(const std::vector<StepRecord>& steps, const ojson& results) {
  ojson s;
  s["steps"] = steps.empty() ? 0 : steps.back().step;
  double train_seconds = 0;
  for (const StepRecord& r : steps)
    if (std::isfinite(field(r, "step_s"))) train_seconds += field(r, "step_s");
  s["train_seconds"] = train_seconds;
  // Wall time of training: the first record's step plus the span of the records' clocks.
  double first_time = NAN, last_time = NAN;
  for (const StepRecord& r : steps) {
    const double t = field(r, "time");
    if (!std::isfinite(t)) continue;
    if (!std::isfinite(first_time)) first_time = t - std::max(0.0, field(steps.front(), "step_s"));
    last_time = t;
  }
  s["train_wall_seconds"] = std::isfinite(first_time) ? last_time - first_time : 0.0;
  // Throughput and data wait over the second half: the first steps include warm-up.
  double clips = 0, seconds = 0, waited = 0;
  for (size_t i = steps.size() / 2; i < steps.size(); ++i) {
    const double step_s = field(steps[i], "step_s");
    if (!std::isfinite(step_s)) continue;
    seconds += step_s;
    // A record counts its own rank's clips; the group trains world_size times as many.
    const double world = field(steps[i], "world_size");
    if (std::isfinite(field(steps[i], "clips")))
      clips += field(steps[i], "clips") * (std::isfinite(world) && world > 0 ? world : 1.0);
    if (std::isfinite(field(steps[i], "data_wait_s"))) waited += field(steps[i], "data_wait_s");
  }
  s["clips_per_s"] = seconds > 0 ? clips / seconds : 0.0;
  s["data_wait_fraction"] = seconds > 0 ? waited / seconds : 0.0;
  // Final loss parts: the mean over the last ten steps (one step is noisy).
  for (const char* key : {"loss", "vtc", "mlm"}) {
    double sum = 0;
    int n = 0;
    for (size_t i = steps.size() > 10 ? steps.size() - 10 : 0; i < steps.size(); ++i)
      if (std::isfinite(field(steps[i], key))) {
        sum += field(steps[i], key);
        ++n;
      }
    if (n > 0) s[std::string("final_") + key] = sum / n;
  }
  // Each eval setting's metrics at its first and last evaluated step.
  ojson eval = ojson::object();
  for (const auto& rec : results["records"]) {
    const std::string label = rec["label"].get<std::string>();
    const int64_t step = rec["step"].get<int64_t>();
    ojson& e = eval[label];
    if (!e.contains("first_step") || step < e["first_step"].get<int64_t>()) {
      e["first_step"] = step;
      e["before"] = rec["metrics"];
    }
    if (!e.contains("last_step") || step > e["last_step"].get<int64_t>()) {
      e["last_step"] = step;
      e["after"] = rec["metrics"];
    }
  }
  double eval_seconds = 0;
  for (const auto& rec : results["records"])
    if (rec.contains("seconds") && rec["seconds"].is_number())
      eval_seconds += rec["seconds"].get<double>();
  s["eval_seconds"] = eval_seconds;
  // One eval setting (the usual run): its metrics also as top-level <metric>_before/_after.
  if (eval.size() == 1) {
    const ojson& e = eval.begin().value();
    for (const auto& [metric, value] : e["before"].items()) s[metric + "_before"] = value;
    for (const auto& [metric, value] : e["after"].items()) s[metric + "_after"] = value;
  }
  s["eval"] = eval;
  return s;
}

std::string before_after_text(const ojson& summary) {
  if (!summary.contains("eval")) return {};
  std::ostringstream out;
  for (const auto& [label, e] : summary["eval"].items()) {
    const std::string before = "step " + std::to_string(e["first_step"].get<int64_t>());
    const std::string after = "step " + std::to_string(e["last_step"].get<int64_t>());
    out << label << "\n";
    out << "  " << std::left << std::setw(16) << "metric" << std::right << std::setw(12) << before
        << std::setw(12) << after << "\n";
    for (const auto& [metric, value] : e["after"].items()) {
      out << "  " << std::left << std::setw(16) << metric << std::right << std::setw(12)
          << (e["before"].contains(metric) ? format_number(e["before"][metric].get<double>()) : "-")
          << std::setw(12) << format_number(value.get<double>()) << "\n";
    }
  }
  return out.str();
}

ReportSummary write_run_report(const fs::path& run_dir) {
  std::error_code ec;
  HARVEST_REQUIRE(fs::is_directory(run_dir, ec), Usage, run_dir.string(), ": not a run folder");
  const fs::path metrics_file = run_dir / "metrics.jsonl";
  const fs::path results_file = run_dir / "eval" / "results.json";
  const bool have_metrics = fs::exists(metrics_file, ec),
             have_results = fs::exists(results_file, ec);
  HARVEST_REQUIRE(have_metrics || have_results, Usage, run_dir.string(),
                  ": nothing to report (no metrics.jsonl and no eval/results.json)");

  const std::vector<StepRecord> steps =
      have_metrics ? read_step_metrics(metrics_file) : std::vector<StepRecord>{};
  const ojson results = read_sweep_results(results_file);  // empty records when absent
  const ojson summary = report_summary(steps, results);

  std::string html =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>harvest run "
      "report: " +
      xml_escape(run_dir.filename().string()) + "</title>\n<style>" + kStyle +
      "</style></head>\n<body>\n";
  html += "<h1>harvest run report</h1>\n<p class=\"note\">" +
          xml_escape(fs::absolute(run_dir).string()) + "</p>\n";

  html += "<h2>Summary</h2>\n";
  html +=
      table_html({"", "value"},
                 {{"steps", std::to_string(summary["steps"].get<int64_t>())},
                  {"training time (s, sum of step times)", format_number(summary["train_seconds"])},
                  {"throughput (clips/s, second half)", format_number(summary["clips_per_s"])},
                  {"data wait (fraction of step time, second half)",
                   format_number(summary["data_wait_fraction"])},
                  {"final loss (mean of last 10 steps)",
                   summary.contains("final_loss") ? format_number(summary["final_loss"]) : "-"}});

  const ojson& eval = summary["eval"];
  if (!eval.empty()) {
    html += "<h2>Before and after training</h2>\n";
    for (const auto& [label, e] : eval.items()) {
      std::vector<std::vector<std::string>> rows;
      for (const auto& [metric, after] : e["after"].items()) {
        const bool has_before = e["before"].contains(metric);
        rows.push_back({metric, has_before ? format_number(e["before"][metric].get<double>()) : "-",
                        format_number(after.get<double>())});
      }
      html += "<p>" + xml_escape(label) + "</p>\n";
      html += table_html({"metric", "step " + std::to_string(e["first_step"].get<int64_t>()),
                          "step " + std::to_string(e["last_step"].get<int64_t>())},
                         rows);
    }
  }

  ReportSummary out;
  out.numbers = summary;
  out.steps = static_cast<int64_t>(steps.size());
  out.eval_records = static_cast<int64_t>(results["records"].size());
  const std::vector<std::string> train = training_charts(steps);
  if (!train.empty()) {
    html += "<h2>Training</h2>\n<div class=\"charts\">\n";
    for (const std::string& svg : train) html += svg + "\n";
    html += "</div>\n";
  }
  std::vector<std::string> evals;  // every eval metric against step
  const std::vector<ojson> rows = records_by_label_and_step(results);
  for (const std::string& m : metric_names(results)) evals.push_back(metric_chart_svg(rows, m));
  if (!evals.empty()) {
    html += "<h2>Evaluation against step</h2>\n<div class=\"charts\">\n";
    for (const std::string& svg : evals) html += svg + "\n";
    html += "</div>\n<h2>Results</h2>\n" + results_table(results);
  }
  out.charts = static_cast<int>(train.size() + evals.size());

  if (const auto config = ck::read_small_file(run_dir / "config.toml"))
    html += "<h2>Resolved config</h2>\n<pre>" + xml_escape(*config) + "</pre>\n";
  html += "</body></html>\n";

  out.html = run_dir / "report.html";
  ck::write_file_atomically(out.html, html);
  return out;
}

}  // namespace harvest::eval
