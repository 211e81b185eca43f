// harvest_step_bench: `harvest bench step` without the CLI, for HARVEST_MODEL_ONLY builds (the GPU
// machines have LibTorch but not CLI11 or the rest of the harvest binary). Same options, same
// JSON on the last stdout line; progress goes to stderr. scripts/gpu-check.sh runs it.
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <sstream>
#include <string>

#include "bench/model/step_bench.hpp"
#include "core/error.hpp"
#include "core/log.hpp"

namespace {

using harvest::ErrorKind;
using harvest::bench::StepBenchOptions;

const char* const kUsage =
    "usage: harvest_step_bench [--device cpu|cuda] [--bf16] [--preset tiny|S/16|B/16|L/14] [--size PX]\n"
    "         [--frames N] [--batch N] [--drop R,R,...] [--repeats N] [--warmup N] [--threads N]\n"
    "         [--peak-tflops T] [--freeze-text] [--libtorch-adamw] [--no-reference] [--python PATH]\n"
    "         [--reference-script PATH] [--log-level LEVEL]\n"
    "Defaults and meanings as `harvest bench step --help`; the JSON result is the last stdout line.\n";

template <class T>
T parse_number(const std::string& flag, const std::string& text) {
  std::istringstream in(text);
  T value{};
  char rest = 0;
  HARVEST_REQUIRE((in >> value) && !(in >> rest), Usage, flag, ": expected a number, got '", text, "'");
  return value;
}

std::vector<double> parse_drops(const std::string& text) {
  std::vector<double> drops;
  std::istringstream in(text);
  for (std::string item; std::getline(in, item, ',');) drops.push_back(parse_number<double>("--drop", item));
  return drops;
}

// Parses argv into `opt`; returns the log level. Throws Usage naming the flag.
std::string parse(int argc, char** argv, StepBenchOptions& opt) {
  std::string log_level = "info";
  const std::map<std::string, std::function<void(const std::string&)>> with_value = {
      {"--device", [&](const std::string& v) { opt.device = v; }},
      {"--preset", [&](const std::string& v) { opt.preset = v; }},
      {"--size", [&](const std::string& v) { opt.size = parse_number<int64_t>("--size", v); }},
      {"--frames", [&](const std::string& v) { opt.frames = parse_number<int64_t>("--frames", v); }},
      {"--batch", [&](const std::string& v) { opt.batch = parse_number<int64_t>("--batch", v); }},
      {"--drop", [&](const std::string& v) { opt.drops = parse_drops(v); }},
      {"--repeats", [&](const std::string& v) { opt.repeats = parse_number<int>("--repeats", v); }},
      {"--warmup", [&](const std::string& v) { opt.warmup = parse_number<int>("--warmup", v); }},
      {"--threads", [&](const std::string& v) { opt.threads = parse_number<int>("--threads", v); }},
      {"--peak-tflops", [&](const std::string& v) { opt.peak_tflops = parse_number<double>("--peak-tflops", v); }},
      {"--python", [&](const std::string& v) { opt.python = v; }},
      {"--reference-script", [&](const std::string& v) { opt.reference_script = v; }},
      {"--log-level", [&](const std::string& v) { log_level = v; }},
  };
  const std::map<std::string, std::function<void()>> flags = {
      {"--bf16", [&] { opt.bf16 = true; }},
      {"--freeze-text", [&] { opt.freeze_text = true; }},
      {"--libtorch-adamw", [&] { opt.libtorch_adamw = true; }},
      {"--no-reference", [&] { opt.reference = false; }},
  };
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (const auto flag = flags.find(arg); flag != flags.end()) {
      flag->second();
    } else if (const auto option = with_value.find(arg); option != with_value.end()) {
      HARVEST_REQUIRE(i + 1 < argc, Usage, arg, " needs a value");
      option->second(argv[++i]);
    } else {
      harvest::fail(ErrorKind::Usage, "unknown argument '", arg, "'\n", kUsage);
    }
  }
  return log_level;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    StepBenchOptions opt;
    const std::string log_level = parse(argc, argv, opt);
    harvest::init_logging({"bench", -1}, harvest::parse_log_level(log_level, "--log-level"));
    std::cout << harvest::bench::run_step_bench(opt).dump() << std::endl;
    return 0;
  } catch (const harvest::Error& e) {
    std::cerr << "harvest_step_bench: " << e.what() << "\n";
    return harvest::exit_code_for(e.kind());
  } catch (const std::exception& e) {
    std::cerr << "harvest_step_bench: " << e.what() << "\n";
    return 1;
  }
}
