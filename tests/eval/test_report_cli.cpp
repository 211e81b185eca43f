#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "tests/support/run.hpp"

using harvest::test::run;
namespace fs = std::filesystem;

namespace {

void write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

std::string read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// metrics.jsonl as the trainer writes it: a summary line, then one record per step.
std::string step_metrics(int steps) {
  std::string text = "{\"steps\":" + std::to_string(steps) + ",\"train_seconds\":1.0}\n";
  for (int s = 1; s <= steps; ++s) {
    const nlohmann::json r = {{"step", s},
                              {"loss", 10.0 - s},
                              {"vtc", 4.0 - 0.1 * s},
                              {"mlm", 6.0 - 0.2 * s},
                              {"lr", 1e-3 * s / steps},
                              {"temperature", 0.01},
                              {"clips", 4},
                              {"clips_per_s", 4.0},
                              {"step_s", 1.0},
                              {"data_wait_s", 0.02},
                              {"data_wait_fraction", 0.02},
                              {"comm_wait_s", 0.1},
                              {"grad_norm", 100.0 / s},
                              {"time", 1000.0 + s},
                              {"rank", 0},
                              {"world_size", 2}};
    text += r.dump() + "\n";
    // Rank 1's record of the same step: the report reads rank 0's only.
    nlohmann::json other = r;
    other["rank"] = 1;
    other["loss"] = 99.0;
    other["step_s"] = 5.0;
    text += other.dump() + "\n";
  }
  return text;
}

// eval/results.json as `harvest sweep` writes it: retrieval at steps 0 and 20.
std::string sweep_results() {
  nlohmann::json records = nlohmann::json::array();
  for (const auto& [step, r1] : {std::pair<int, double>{20, 72.5}, {0, 1.5}})
    records.push_back(
        {{"step", step},
         {"checkpoint", "run/checkpoints/step-" + std::to_string(step)},
         {"task", "retrieval"},
         {"label", "retrieval test 8f"},
         {"setting", "{}"},
         {"seconds", 2.0},
         {"metrics", {{"t2v_r1", r1}, {"t2v_r5", r1 + 10}, {"t2v_medr", 30.0 - step}}}});
  return nlohmann::json{{"records", records}}.dump(2);
}

}  // namespace

TEST_CASE("harvest report writes the run's curves and before-after table", "[eval][cli][report]") {
  const std::string exe = HARVEST_EXE;
  const fs::path dir = fs::temp_directory_path() / ("harvest-report-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  write(dir / "metrics.jsonl", step_metrics(20) + "{\"step\":21,\"loss\":1");  // torn last line
  write(dir / "eval" / "results.json", sweep_results());
  write(dir / "config.toml", "[model]\npreset = \"tiny\" # <b>not markup</b>\n");

  const auto result = run(exe + " report " + dir.string());
  INFO(result.output);
  REQUIRE(result.exit_code == 0);
  const auto numbers = nlohmann::json::parse(result.output.substr(result.output.rfind("\n{") + 1));
  CHECK(numbers["steps"] == 20);
  CHECK(numbers["train_seconds"].get<double>() == Approx(20.0));
  CHECK(numbers["train_wall_seconds"].get<double>() == Approx(20.0));  // 1 s step, then 19 s
  CHECK(numbers["clips_per_s"].get<double>() == Approx(8.0));  // 4 per rank x world_size 2
  CHECK(numbers["eval_seconds"].get<double>() == Approx(4.0));
  CHECK(numbers["t2v_r1_before"] == 1.5);  // one eval setting: also at the top level
  CHECK(numbers["t2v_r1_after"] == 72.5);
  CHECK_THAT(result.output, Catch::Contains("retrieval test 8f\n  metric") &&
                                Catch::Contains("t2v_r1") && Catch::Contains("72.5"));
  CHECK(numbers["data_wait_fraction"].get<double>() == Approx(0.02));
  CHECK(numbers["final_loss"].get<double>() == Approx(10.0 - 15.5));  // mean of steps 11..20
  CHECK(numbers["eval"]["retrieval test 8f"]["before"]["t2v_r1"] == 1.5);
  CHECK(numbers["eval"]["retrieval test 8f"]["after"]["t2v_r1"] == 72.5);
  CHECK_THAT(result.output, Catch::Contains("unterminated last line"));

  const std::string html = read(dir / "report.html");
  CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
  // 6 training charts (loss, lr, temperature, throughput, waits, grad norm) + 3 eval metrics.
  CHECK(count(html, "<svg") == 9);
  CHECK_THAT(html, Catch::Contains("<td>t2v_r1</td><td>1.5</td><td>72.5</td>"));
  CHECK_THAT(html, Catch::Contains("&lt;b&gt;not markup&lt;/b&gt;"));
  CHECK(!fs::exists(dir / "report.html.tmp"));

  // A real browser draws it: Debian's chromium, headless, screenshots the page; the picture
  // must hold the charts' ink, not a blank or error page.
  const std::string shot = (dir / "shot.png").string();
  const auto browser = run(
      "chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,2400 "
      "--screenshot=" +
      shot + " file://" + (dir / "report.html").string());
  INFO(browser.output);
  REQUIRE(fs::exists(shot));
  const auto ink = run("ffmpeg -v error -i " + shot +
                       " -f rawvideo -pix_fmt gray - | " HARVEST_PYTHON " -c "
                       "\"import sys,numpy as n; a=n.frombuffer(sys.stdin.buffer.read(),n.uint8); "
                       "print('ink', (a<200).mean(), 'pixels', a.size)\"");
  INFO(ink.output);
  REQUIRE(ink.exit_code == 0);
  std::istringstream words(ink.output.substr(ink.output.find("ink")));
  std::string label;
  double ink_fraction = 0;
  size_t pixels = 0;
  words >> label >> ink_fraction >> label >> pixels;
  CHECK(pixels == 1400u * 2400u);
  CHECK(ink_fraction > 0.01);  // text, axes and lines: a blank page is ~0
  fs::remove_all(dir);
}

TEST_CASE("harvest report refuses folders with nothing or broken records", "[eval][cli][report]") {
  const std::string exe = HARVEST_EXE;
  const fs::path dir =
      fs::temp_directory_path() / ("harvest-report-bad-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const auto empty = run(exe + " report " + dir.string());
  CHECK(empty.exit_code == 2);
  CHECK_THAT(empty.output, Catch::Contains("nothing to report"));

  write(dir / "metrics.jsonl", step_metrics(3) + "not json\n" + step_metrics(1));
  const auto broken = run(exe + " report " + dir.string());
  CHECK(broken.exit_code != 0);
  CHECK_THAT(broken.output,
             Catch::Contains((dir / "metrics.jsonl").string() + ":8: not a JSON object"));  // 1 + 3 x 2 ranks
  CHECK(!fs::exists(dir / "report.html"));

  write(dir / "metrics.jsonl", step_metrics(3));
  write(dir / "eval" / "results.json", "{\"records\": [{\"step\": 1}]}");
  const auto bad_results = run(exe + " report " + dir.string());
  CHECK(bad_results.exit_code != 0);
  CHECK_THAT(bad_results.output, Catch::Contains("results.json: a record lacks"));
  fs::remove_all(dir);
}
