#include <fstream>
#include <map>
#include <sstream>

#include "core/files.hpp"
#include "core/config/schema.hpp"
#include "core/error.hpp"

namespace harvest {

using config_detail::all_sections;
using config_detail::did_you_mean;
using config_detail::Field;
using config_detail::Section;

namespace {

std::string position(const toml::node& n, const std::string& origin) {
  const auto& src = n.source();
  if (!src.begin) return origin;
  return cat(origin, ":", src.begin.line, ":", src.begin.column);
}

std::vector<std::string> section_names() {
  std::vector<std::string> names;
  for (const auto& s : all_sections()) names.push_back(s.name);
  return names;
}

const Section* find_section(const std::string& name) {
  for (const auto& s : all_sections())
    if (s.name == name) return &s;
  return nullptr;
}

std::string unknown_message(const std::string& what, const std::string& name,
                            const std::vector<std::string>& candidates) {
  std::string msg = cat("unknown ", what, " '", name, "'");
  if (auto guess = did_you_mean(name, candidates); !guess.empty())
    msg += cat("; did you mean '", guess, "'?");
  return msg;
}

// A bare key at the top level is usually a key written outside its section.
std::string unknown_top_level(const std::string& name, const toml::node& node) {
  if (!node.is_table())
    for (const auto& s : all_sections())
      if (s.find(name)) return cat("keys belong in a section; did you mean '", name, "' under [", s.name, "]?");
  return unknown_message("section", name, section_names());
}

std::vector<std::string> field_keys(const Section& s) {
  std::vector<std::string> keys;
  for (const auto& f : s.fields) keys.push_back(f.key);
  return keys;
}

// Collects every problem, then throws them together: users fix a config in one pass.
class Loader {
 public:
  explicit Loader(std::string origin) : origin_(std::move(origin)) {}

  void apply_table(const toml::table& root) {
    for (const auto& [name, node] : root) {
      const std::string sname(name.str());
      const Section* section = find_section(sname);
      if (!section) {
        error(position(node, origin_), sname, unknown_top_level(sname, node));
        continue;
      }
      const auto* table = node.as_table();
      if (!table) {
        error(position(node, origin_), sname, cat("expected a table [", sname, "], got ",
                                                  config_detail::node_type_name(node)));
        continue;
      }
      for (const auto& [key, value] : *table) {
        const std::string k(key.str());
        apply_field(*section, k, value, position(value, origin_));
      }
    }
  }

  void apply_override(const std::string& assignment) {
    const auto eq = assignment.find('=');
    const std::string where = "--set " + assignment.substr(0, eq);
    if (eq == std::string::npos) {
      error("--set " + assignment, assignment, "expected section.key=value");
      return;
    }
    const std::string path = assignment.substr(0, eq);
    const std::string raw = assignment.substr(eq + 1);
    const auto dot = path.find('.');
    if (dot == std::string::npos) {
      error(where, path, "expected section.key=value (the key needs its section, e.g. train.lr)");
      return;
    }
    const std::string sname = path.substr(0, dot);
    const Section* section = find_section(sname);
    if (!section) {
      error(where, path, unknown_message("section", sname, section_names()));
      return;
    }
    // The value is TOML (1e-4, true, ["a"]); anything that is not valid TOML is taken as a string,
    // so paths and names need no quotes on the command line.
    toml::table holder;
    try {
      holder = toml::parse("value = " + raw);
    } catch (const toml::parse_error&) {
      holder.insert("value", raw);
    }
    const Field* field = section->find(path.substr(dot + 1));
    if (field && field->type == "string" && !holder["value"].is_string()) holder.insert_or_assign("value", raw);
    apply_field(*section, path.substr(dot + 1), *holder.get("value"), where);
  }

  void validate() {
    const ModelConfig& m = config.model;
    const int64_t patch = preset_patch_size(m.preset);
    if (m.image_size % patch != 0)
      error(origin_of("model.image_size"), "model.image_size",
            cat("must be a multiple of the ", m.preset, " patch size ", patch, " (got ", m.image_size, ")"));
    if (m.mask_token_prob + m.random_token_prob > 1.0 + 1e-12)
      error(origin_of("model.random_token_prob"), "model.mask_token_prob + model.random_token_prob",
            cat("must not exceed 1 (got ", m.mask_token_prob + m.random_token_prob, ")"));
    const DataConfig& d = config.data;
    if (d.crop_scale_min > d.crop_scale_max)
      error(origin_of("data.crop_scale_min"), "data.crop_scale_min",
            cat("must not exceed data.crop_scale_max (", d.crop_scale_min, " > ", d.crop_scale_max, ")"));
    if (d.loader_placement == "coordinator" && d.loaders_per_worker == 0)
      error(origin_of("data.loader_placement"), "data.loader_placement",
            "coordinator places loader processes; data.loaders_per_worker = 0 means none (decode in the worker)");
    const TrainConfig& t = config.train;
    if (t.unmasked_steps > t.steps)
      error(origin_of("train.unmasked_steps"), "train.unmasked_steps",
            cat("must not exceed train.steps (", t.unmasked_steps, " > ", t.steps, ")"));
    const EvalConfig& e = config.eval;
    if (e.every_steps > 0 && config.checkpoint.every_steps > 0 && e.every_steps % config.checkpoint.every_steps != 0)
      error(origin_of("eval.every_steps"), "eval.every_steps",
            cat("must be a multiple of checkpoint.every_steps (evaluations run on committed checkpoints; ",
                e.every_steps, " is not a multiple of ", config.checkpoint.every_steps, ")"));
    const DistConfig& w = config.dist;
    if (w.min_workers != 0 && w.min_workers > w.world_size)
      error(origin_of("dist.min_workers"), "dist.min_workers",
            cat("must not exceed dist.world_size (", w.min_workers, " > ", w.world_size, ")"));
    if (w.max_workers != 0 && w.max_workers < w.world_size)
      error(origin_of("dist.max_workers"), "dist.max_workers",
            cat("must be at least dist.world_size (", w.max_workers, " < ", w.world_size, ")"));
    if (w.backend == "inproc" && w.world_size != 1)
      error(origin_of("dist.backend"), "dist.backend",
            cat("inproc runs one worker; dist.world_size is ", w.world_size, " (use gloo or nccl)"));
    if (w.backend == "nccl" && config.train.device == "cpu")
      error(origin_of("dist.backend"), "dist.backend", "nccl needs train.device = cuda or auto (got cpu)");
    if (config.train.precision == "bf16" && config.train.device == "cpu")
      error(origin_of("train.precision"), "train.precision",
            "bf16 autocast is for CUDA; use fp32 (or auto) with train.device = cpu");
    const CoordinatorConfig& c = config.coordinator;
    // The coordinator holds the server pair, every other peer a client pair (checked by role
    // when the keys are read); here only what is wrong for every role.
    if (c.curve_client_public.empty() != c.curve_client_secret.empty())
      error(origin_of("coordinator.curve_client_public"), "coordinator.curve_client_*",
            "curve_client_public and curve_client_secret come together (a key pair from harvest "
            "keygen)");
    if (!c.curve_client_public.empty() && c.curve_server_public.empty())
      error(origin_of("coordinator.curve_client_public"), "coordinator.curve_server_public",
            "client keys are set but not the coordinator's public key, so CURVE would be off");
  }

  void throw_if_errors() const {
    if (errors_.empty()) return;
    std::string msg = cat(errors_.size(), errors_.size() == 1 ? " problem" : " problems", " in config ",
                          origin_, ":");
    for (const auto& e : errors_) msg += "\n  " + e;
    throw Error(ErrorKind::Config, msg);
  }

  Config config;

 private:
  void apply_field(const Section& section, const std::string& key, const toml::node& value,
                   const std::string& where) {
    const std::string path = section.name + "." + key;
    const Field* field = section.find(key);
    if (!field) {
      error(where, path, unknown_message("key", key, field_keys(section)));
      return;
    }
    if (auto msg = field->assign(value, section.get(config)); !msg.empty()) {
      error(where, path, msg);
      return;
    }
    origins_[path] = where;
  }

  std::string origin_of(const std::string& path) const {
    auto it = origins_.find(path);
    return it == origins_.end() ? origin_ + " (default)" : it->second;
  }

  void error(const std::string& where, const std::string& path, const std::string& msg) {
    errors_.push_back(cat(where, ": ", path, ": ", msg));
  }

  std::string origin_;
  std::vector<std::string> errors_;
  std::map<std::string, std::string> origins_;
};

Config finish(Loader& loader, const std::vector<std::string>& overrides) {
  for (const auto& o : overrides) loader.apply_override(o);
  loader.throw_if_errors();  // type errors first: cross-field rules need sane values
  loader.validate();
  loader.throw_if_errors();
  return loader.config;
}

toml::table parse_or_throw(const std::string& text, const std::string& origin) {
  try {
    return toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    const auto& src = e.source();
    fail(ErrorKind::Config, origin, ":", src.begin.line, ":", src.begin.column, ": invalid TOML: ",
         e.description());
  }
}

}  // namespace

int64_t preset_patch_size(const std::string& preset) {
  if (preset == "tiny" || preset == "S/16" || preset == "B/16") return 16;
  if (preset == "L/14") return 14;
  fail(ErrorKind::Config, "model.preset: unknown preset '", preset, "' (tiny, S/16, B/16, L/14)");
}

Config parse_config(const std::string& toml_text, const std::string& origin,
                    const std::vector<std::string>& overrides) {
  Loader loader(origin);
  loader.apply_table(parse_or_throw(toml_text, origin));
  return finish(loader, overrides);
}

Config load_config(const std::optional<std::string>& file, const std::vector<std::string>& overrides) {
  Loader loader(file ? *file : std::string("<defaults>"));
  if (file) {
    require_regular_file(*file, ErrorKind::Config, "config file");
    std::ifstream in(*file, std::ios::binary);
    HARVEST_REQUIRE(in, Config, "cannot read config file ", *file, " (does it exist?)");
    std::stringstream text;
    text << in.rdbuf();
    loader.apply_table(parse_or_throw(text.str(), *file));
  }
  return finish(loader, overrides);
}

std::string to_toml(const Config& config) {
  std::ostringstream out;
  out << "# harvest resolved config\n";
  for (const auto& section : all_sections()) {
    out << "\n[" << section.name << "]\n";
    for (const auto& f : section.fields) out << f.key << " = " << f.literal(section.cget(config)) << "\n";
  }
  return out.str();
}

std::string config_reference_markdown() {
  std::ostringstream out;
  const Config defaults;
  out << "# Configuration reference\n\n"
      << "Generated by `harvest config docs` from core/config/sections.cpp; a test keeps this file "
         "equal to it.\n\n"
      << "A run's config is layered: defaults < the TOML file (`--config`) < `--set section.key=value` "
         "overrides. It is validated once at start: unknown sections and keys are rejected (with a "
         "suggestion), wrong types and out-of-range values are reported with the key and "
         "file:line:col, and cross-field rules are checked. The resolved config is written to the run "
         "folder (`config.toml`) and into every checkpoint. `harvest config show` prints it; "
         "`harvest config check FILE` validates a file (exit 0, or 2 with every problem listed).\n\n"
      << "Cross-field rules: `model.image_size` is a multiple of the preset's patch size (16, or 14 for "
         "L/14); `model.mask_token_prob + model.random_token_prob <= 1`; `data.crop_scale_min <= "
         "data.crop_scale_max`; `train.unmasked_steps <= train.steps`; `dist.min_workers <= dist.world_size <= dist.max_workers` (0 means "
         "world_size); `dist.backend = inproc` needs `world_size = 1`; `nccl` and `bf16` need a CUDA "
         "device; CURVE keys come in pairs.\n";
  for (const auto& section : all_sections()) {
    out << "\n## [" << section.name << "]\n\n" << section.doc << "\n\n"
        << "| key | type | default | allowed | meaning |\n| --- | --- | --- | --- | --- |\n";
    for (const auto& f : section.fields) {
      out << "| `" << f.key << "` | " << f.type << " | `" << f.literal(section.cget(defaults)) << "` | " << f.constraint << " | "
          << f.doc << " |\n";
    }
  }
  return out.str();
}

}  // namespace harvest
