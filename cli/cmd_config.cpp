// harvest config show | check | docs
#include <iostream>

#include "cli/commands.hpp"

namespace harvest::cli {

void ConfigOptions::add_to(CLI::App& cmd) {
  cmd.add_option("-c,--config", file, "TOML config file");
  cmd.add_option("--set", overrides, "Override a key: section.key=value (repeatable)")
      ->type_name("KEY=VALUE");
}

Config ConfigOptions::load() const {
  return load_config(file.empty() ? std::nullopt : std::optional<std::string>(file), overrides);
}

CLI::App& command_group(CLI::App& app, const std::string& name, const std::string& description) {
  for (auto* sub : app.get_subcommands([](CLI::App*) { return true; }))
    if (sub->get_name() == name) return *sub;
  auto* group = app.add_subcommand(name, description);
  group->require_subcommand(1);
  return *group;
}

void add_config_commands(CLI::App& app) {
  auto* config = &command_group(app, "config", "Inspect and validate configuration");

  auto show_opts = std::make_shared<ConfigOptions>();
  auto* show = config->add_subcommand("show", "Print the resolved config (defaults < file < --set) as TOML");
  show_opts->add_to(*show);
  show->callback([show_opts] { std::cout << to_toml(show_opts->load()); });

  auto check_opts = std::make_shared<ConfigOptions>();
  auto* check = config->add_subcommand("check", "Validate a config file: exit 0, or 2 listing every problem");
  check->add_option("file", check_opts->file, "TOML config file")->required();
  check->add_option("--set", check_opts->overrides, "Override a key: section.key=value (repeatable)");
  check->callback([check_opts] {
    check_opts->load();
    std::cout << check_opts->file << ": ok\n";
  });

  auto* docs = config->add_subcommand("docs", "Print the Markdown reference of every key (docs/config.md)");
  docs->callback([] { std::cout << config_reference_markdown(); });
}

}  // namespace harvest::cli
