// harvest: the one binary. main() wires the command tree, logging and the exit-code contract:
// 0 success, 1 runtime failure, 2 usage or config error (docs/exit-codes.md).
#include <spdlog/spdlog.h>

#include <cstdio>
#include <exception>
#include <string>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "core/heap.hpp"
#include "core/log.hpp"

int main(int argc, char** argv) {
  using namespace harvest;
  std::string heap;  // set before parsing runs a command: no large allocation has happened yet
  CLI::App app{"harvest: post-pretrain an image CLIP into a video-language model", "harvest"};
  app.require_subcommand(1);
  app.set_version_flag("--version", [] { return cli::version_text(); }, "Print versions and exit");
  cli::GlobalOptions global;
  app.add_option("--log-level", global.log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str();
  app.parse_complete_callback([&global, &heap] {
    init_logging(LogIdentity{"cli", -1}, parse_log_level(global.log_level, "--log-level"));
    spdlog::debug("{}", heap);
  });

  cli::add_version_command(app);
  cli::add_config_commands(app);
  cli::add_train_command(app);
  cli::add_worker_command(app);
  cli::add_run_command(app);
  cli::add_loader_command(app);
  cli::add_coordinator_commands(app);
  cli::add_model_commands(app);
  cli::add_data_commands(app);
  cli::add_tokenize_command(app);
  cli::add_vocab_command(app);
  cli::add_ckpt_commands(app);
  cli::add_clip_commands(app);
  cli::add_eval_commands(app);
  cli::add_report_command(app);

  try {
    heap = configure_heap();  // a bad HARVEST_HEAP: the Error below (exit 2)
    app.parse(argc, argv);
    return 0;
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "harvest: usage error: %s\nRun with --help for usage.\n", e.what());
    return 2;
  } catch (const Error& e) {
    std::fprintf(stderr, "harvest: %s: %s\n", to_string(e.kind()), e.what());
    return exit_code_for(e.kind());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "harvest: error: %s\n", e.what());
    return 1;
  }
}
