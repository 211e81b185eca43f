// harvest report RUN_DIR: the run's HTML report (training curves, eval against step, results).
#include <spdlog/spdlog.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "eval/report.hpp"

namespace harvest::cli {

void add_report_command(CLI::App& app) {
  auto run_dir = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand(
      "report", "Write RUN_DIR/report.html: training curves, eval metrics against step, results");
  cmd->add_option("run_dir", *run_dir, "The run folder (logging.run_dir)")->required();
  cmd->callback([run_dir] {
    const eval::ReportSummary written = eval::write_run_report(*run_dir);
    spdlog::info("report: {} ({} steps, {} eval records, {} charts)", written.html.string(),
                 written.steps, written.eval_records, written.charts);
    nlohmann::ordered_json numbers = written.numbers;
    std::cout << eval::before_after_text(numbers);
    numbers["report"] = written.html.string();
    std::cout << numbers.dump() << std::endl;
  });
}

}  // namespace harvest::cli
