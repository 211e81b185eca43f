// Shared helpers for the tokenizer tests: a scratch folder, JSON Lines files, and the Python
// reference (tests/tokenizer/reference_clip_tokenizer.py, run with the project's Python, HARVEST_PYTHON).
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/support/run.hpp"

namespace harvest::test {

inline const std::string kClipVocab =
    HARVEST_SOURCE_DIR "/../shared/clip/bpe_simple_vocab_16e6.txt.gz";
inline const std::string kReferenceScript =
    HARVEST_SOURCE_DIR "/tests/tokenizer/reference_clip_tokenizer.py";
inline const std::string kPython = HARVEST_PYTHON;

// A fresh folder under the build tree, removed at scope exit.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& name)
      : path_(std::filesystem::path(HARVEST_BINARY_DIR) / "test-scratch" /
              (name + "-" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void write_jsonl(const std::string& path, const std::vector<nlohmann::json>& values) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  for (const auto& v : values) out << v.dump() << "\n";
}

inline std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> values;
  std::ifstream in(path, std::ios::binary);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) values.push_back(nlohmann::json::parse(line));
  return values;
}

inline std::string quote(const std::string& s) { return "'" + s + "'"; }

// Runs the Python reference; throws with its output when it fails (a missing regex package
// makes the test fail, naming the package, rather than pass silently).
inline void run_reference(const std::string& args) {
  const auto r = run(kPython + " " + quote(kReferenceScript) + " " + args);
  if (r.exit_code != 0)
    throw std::runtime_error("reference_clip_tokenizer.py " + args + " failed (exit " +
                             std::to_string(r.exit_code) +
                             "; needs the .venv's regex package, see scripts/setup.sh):\n" + r.output);
}

// Applies the reference's --fn to each value; returns its answers in order.
inline std::vector<nlohmann::json> reference_apply(const ScratchDir& dir, const std::string& fn,
                                                   const std::vector<nlohmann::json>& inputs,
                                                   const std::string& extra = "") {
  const std::string in = dir.file(fn + "-in.jsonl"), out = dir.file(fn + "-out.jsonl");
  write_jsonl(in, inputs);
  run_reference("apply --fn " + fn + " " + extra + " " + quote(in) + " " + quote(out));
  auto values = read_jsonl(out);
  if (values.size() != inputs.size())
    throw std::runtime_error("reference returned " + std::to_string(values.size()) + " values for " +
                             std::to_string(inputs.size()) + " inputs");
  return values;
}

}  // namespace harvest::test
