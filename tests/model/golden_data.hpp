// Golden data written by tests/model/reference_model.py: index.json + data.bin (float32/int64).
#pragma once

#include <torch/torch.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "tests/support/run.hpp"

namespace harvest::test {

class GoldenData {
 public:
  // Runs the reference into `dir`, loads what it wrote and removes the folder.
  static GoldenData generate(const std::string& dir) {
    const CommandResult r = run("mkdir -p '" + dir + "' && " HARVEST_PYTHON " " HARVEST_SOURCE_DIR
                                "/tests/model/reference_model.py '" + dir + "'");
    HARVEST_REQUIRE(r.exit_code == 0, Runtime, "reference_model.py failed: ", r.output);
    GoldenData data(dir);
    run("rm -rf '" + dir + "'");
    return data;
  }

  explicit GoldenData(const std::string& dir) {
    std::ifstream index(dir + "/index.json");
    HARVEST_REQUIRE(index, Runtime, "cannot read ", dir, "/index.json");
    json_ = nlohmann::json::parse(index);
    std::ifstream data(dir + "/data.bin", std::ios::binary);
    blob_.assign(std::istreambuf_iterator<char>(data), std::istreambuf_iterator<char>());
  }

  const nlohmann::json& config() const { return json_.at("config"); }

  bool has(const std::string& name) const { return json_.at("tensors").contains(name); }

  std::vector<std::string> names_with_prefix(const std::string& prefix) const {
    std::vector<std::string> out;
    for (auto it = json_.at("tensors").begin(); it != json_.at("tensors").end(); ++it)
      if (it.key().rfind(prefix, 0) == 0) out.push_back(it.key().substr(prefix.size()));
    return out;
  }

  at::Tensor get(const std::string& name) const {
    HARVEST_REQUIRE(has(name), Runtime, "golden data has no tensor '", name, "'");
    const auto& entry = json_.at("tensors").at(name);
    const std::vector<int64_t> shape = entry.at("shape").get<std::vector<int64_t>>();
    const auto dtype = entry.at("dtype").get<std::string>() == "i64" ? torch::kLong : torch::kFloat;
    const auto offset = entry.at("offset").get<size_t>();
    return torch::from_blob(const_cast<char*>(blob_.data()) + offset, shape, dtype).clone();
  }

 private:
  nlohmann::json json_;
  std::vector<char> blob_;
};

}  // namespace harvest::test
