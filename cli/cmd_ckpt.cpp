// harvest ckpt inspect|verify, and harvest bench checkpoint.
#include <cstdio>
#include <iostream>
#include <memory>

#include "bench/checkpoint/checkpoint_bench.hpp"
#include "checkpoint/checksum.hpp"
#include "checkpoint/commit.hpp"
#include "checkpoint/reader.hpp"
#include "cli/commands.hpp"
#include "core/error.hpp"

namespace harvest::cli {

namespace fs = std::filesystem;
using namespace harvest::checkpoint;

namespace {

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 4) {
    bytes /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return buf;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

// Records as a tree: a group line whenever the path's folder changes, then the leaf.
void print_tree(const std::vector<RecordInfo>& records) {
  std::vector<std::string> open;
  for (const RecordInfo& r : records) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    for (std::size_t slash; (slash = r.path.find('/', start)) != std::string::npos;
         start = slash + 1)
      parts.push_back(r.path.substr(start, slash - start));
    std::size_t same = 0;
    while (same < parts.size() && same < open.size() && parts[same] == open[same]) ++same;
    for (std::size_t d = same; d < parts.size(); ++d)
      std::cout << std::string(2 * d, ' ') << parts[d] << "/\n";
    open = parts;
    const std::string leaf = r.path.substr(start);
    std::cout << std::string(2 * parts.size(), ' ') << leaf << "  " << dtype_name(r.dtype) << " "
              << shape_text(r.shape) << "  " << human_bytes(static_cast<double>(r.nbytes));
    if (r.stored_bytes != r.nbytes)
      std::cout << " (stored " << human_bytes(static_cast<double>(r.stored_bytes)) << ")";
    std::cout << "  " << r.layout << "  " << checksum_text(r.checksum) << "\n";
  }
}

void inspect_file(const fs::path& file, bool as_json, bool show_config) {
  const CheckpointReader reader(file);
  const CheckpointMeta& m = reader.meta();
  std::size_t total = 0, stored = 0;
  for (const auto& r : reader.records()) {
    total += r.nbytes;
    stored += r.stored_bytes;
  }
  if (as_json) {
    nlohmann::json records = nlohmann::json::array();
    for (const auto& r : reader.records())
      records.push_back({{"path", r.path},
                         {"dtype", dtype_name(r.dtype)},
                         {"shape", r.shape},
                         {"bytes", r.nbytes},
                         {"stored_bytes", r.stored_bytes},
                         {"layout", r.layout},
                         {"checksum", checksum_text(r.checksum)}});
    const nlohmann::json j = {{"file", file.string()},
                              {"format_version", m.format_version},
                              {"step", m.step},
                              {"epoch", m.epoch},
                              {"rank", m.rank},
                              {"world_size", m.world_size},
                              {"harvest_version", m.harvest_version},
                              {"torch_version", m.torch_version},
                              {"created_utc", m.created_utc},
                              {"config_toml", m.config_toml},
                              {"bytes", total},
                              {"stored_bytes", stored},
                              {"records", records}};
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::cout << file.string() << "\n"
            << "  format version " << m.format_version << ", step " << m.step << ", epoch "
            << m.epoch << ", part " << m.rank << " of " << m.world_size << "\n"
            << "  harvest " << m.harvest_version << ", LibTorch "
            << (m.torch_version.empty() ? "-" : m.torch_version) << ", created " << m.created_utc
            << "\n"
            << "  " << reader.records().size() << " datasets, "
            << human_bytes(static_cast<double>(total)) << " ("
            << human_bytes(static_cast<double>(stored)) << " on disk), config "
            << m.config_toml.size() << " bytes of TOML"
            << (show_config ? "" : " (--config prints it)") << "\n";
  if (show_config) std::cout << "--- config ---\n" << m.config_toml << "--- end config ---\n";
  print_tree(reader.records());
}

// A checkpoint folder: its committed checkpoints (from `latest`), newest first. A step folder
// (step-N, no manifest of its own) is shown as its parent folder's entry for that step.
void inspect_dir(const fs::path& dir, bool as_json) {
  fs::path folder = dir;
  std::optional<std::string> only;  // a step folder: just that entry
  auto manifest = read_manifest(folder);
  if (!manifest && read_manifest(dir.parent_path())) {
    folder = dir.parent_path();
    only = dir.filename().string();
    manifest = read_manifest(folder);
  }
  HARVEST_REQUIRE(manifest.has_value(), Runtime, dir.string(), ": no checkpoint manifest (",
                  (dir / "latest").string(), ") in this folder or its parent");
  std::vector<const CommittedCheckpoint*> shown;
  for (const auto& c : manifest->committed)
    if (!only || c.name == *only) shown.push_back(&c);
  HARVEST_REQUIRE(!only || !shown.empty(), Runtime, dir.string(),
                  ": not a committed checkpoint of ", folder.string(),
                  " (an unfinished save, or removed by retention)");
  auto bytes_of = [](const CommittedCheckpoint& c) {
    uint64_t bytes = 0;
    for (const auto& p : c.parts) bytes += p.bytes;
    return bytes;
  };
  if (as_json) {
    nlohmann::json committed = nlohmann::json::array();
    for (const CommittedCheckpoint* c : shown) {
      nlohmann::json parts = nlohmann::json::array();
      for (const auto& p : c->parts)
        parts.push_back({{"file", (folder / c->name / p.file).string()}, {"bytes", p.bytes}});
      committed.push_back({{"name", c->name},
                           {"step", c->step},
                           {"world_size", c->world_size},
                           {"bytes", bytes_of(*c)},
                           {"committed_utc", c->committed_utc},
                           {"parts", parts}});
    }
    std::cout << nlohmann::json{{"dir", folder.string()}, {"committed", committed}}.dump() << "\n";
    return;
  }
  std::cout << folder.string() << ": " << manifest->committed.size()
            << " committed checkpoint(s), newest first\n";
  for (const CommittedCheckpoint* c : shown)
    std::cout << "  " << c->name << "  step " << c->step << "  " << c->world_size << " part(s)  "
              << human_bytes(static_cast<double>(bytes_of(*c))) << "  committed "
              << c->committed_utc << "\n";
}

void verify_file(const fs::path& file) {
  verify_checkpoint_file(file);
  const CheckpointReader reader(file);
  std::size_t total = 0;
  for (const auto& r : reader.records()) total += r.nbytes;
  std::cout << file.string() << ": ok (" << reader.records().size() << " datasets, "
            << human_bytes(static_cast<double>(total)) << ", every checksum matches)\n";
}

// Every committed checkpoint in the folder; fails (exit 1) when the latest does not verify.
void verify_dir(const fs::path& dir) {
  const auto manifest = read_manifest(dir);
  HARVEST_REQUIRE(manifest.has_value(), Runtime, dir.string(), ": no checkpoint manifest (",
                  (dir / "latest").string(), ") in this folder");
  std::string first_problem;
  int failed = 0;
  for (const auto& c : manifest->committed) {
    const auto problem = check_committed(dir, c, VerifyLevel::Full);
    std::cout << "  " << c.name << ": " << (problem ? "FAILED: " + *problem : std::string("ok"))
              << "\n";
    if (problem && first_problem.empty()) first_problem = *problem;
    failed += problem ? 1 : 0;
  }
  HARVEST_REQUIRE(failed == 0, Runtime, dir.string(), ": ", failed, " of ",
                  manifest->committed.size(),
                  " committed checkpoint(s) fail verification; first: ", first_problem);
  std::cout << dir.string() << ": ok (" << manifest->committed.size()
            << " committed checkpoint(s) verified)\n";
}

}  // namespace

void add_ckpt_commands(CLI::App& app) {
  auto* ckpt = &command_group(app, "ckpt", "Inspect and verify HDF5 checkpoints");

  struct InspectArgs {
    std::string path;
    bool json = false;
    bool config = false;
  };
  auto inspect_args = std::make_shared<InspectArgs>();
  auto* inspect =
      ckpt->add_subcommand("inspect",
                           "Print a checkpoint file's metadata and dataset tree (shapes, sizes, "
                           "checksums), or a folder's committed checkpoints");
  inspect->add_option("path", inspect_args->path, "Checkpoint file (.h5) or checkpoint folder")
      ->required();
  inspect->add_flag("--json", inspect_args->json, "Machine-readable output");
  inspect->add_flag("--config", inspect_args->config, "Also print the stored resolved config");
  inspect->callback([inspect_args] {
    if (fs::is_directory(inspect_args->path)) {
      inspect_dir(inspect_args->path, inspect_args->json);
    } else {
      inspect_file(inspect_args->path, inspect_args->json, inspect_args->config);
    }
  });

  auto verify_path = std::make_shared<std::string>();
  auto* verify = ckpt->add_subcommand(
      "verify",
      "Check every dataset's checksum: exit 0 when intact, 1 naming the first bad dataset");
  verify
      ->add_option("path", *verify_path,
                   "Checkpoint file (.h5) or checkpoint folder (every committed checkpoint)")
      ->required();
  verify->callback([verify_path] {
    if (fs::is_directory(*verify_path)) {
      verify_dir(*verify_path);
    } else {
      verify_file(*verify_path);
    }
  });

  auto* bench_group = &command_group(app, "bench", "Benchmarks (JSON on the last line)");
  auto bench_opts = std::make_shared<bench::CheckpointBenchOptions>();
  auto bench_dir = std::make_shared<std::string>();
  auto bench_json = std::make_shared<bool>(false);
  auto* bench = bench_group->add_subcommand("checkpoint",
                                            "Checkpoint save/load GB/s vs a raw fsync'd write of "
                                            "the same bytes, and async blocking time");
  bench->add_option("--size-mb", bench_opts->size_mb, "Checkpoint size in MB")
      ->capture_default_str();
  bench->add_option("--reps", bench_opts->reps, "Interleaved repetitions (medians reported)")
      ->capture_default_str();
  bench->add_option("--dir", *bench_dir,
                    "Folder on the disk to measure (default: the temp folder)");
  bench->add_option("--compression", bench_opts->compression, "none or gzip")
      ->capture_default_str();
  bench->add_flag("--h5py", bench_opts->h5py,
                  "Also time plain h5py writing the same tensors (needs the project's Python with h5py)");
  bench->add_flag("--json", *bench_json, "Accepted for symmetry: the last line is always JSON");
  bench->callback([bench_opts, bench_dir] {
    bench_opts->dir = *bench_dir;
    std::cout << bench::run_checkpoint_bench(*bench_opts).dump() << std::endl;
  });
}

}  // namespace harvest::cli
