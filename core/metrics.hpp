// MetricsWriter: one JSON object per line (metrics.jsonl in the run folder).
// Each record is written with a single write() on an O_APPEND descriptor, so several
// processes may share one file without interleaving within a line.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace harvest {

class MetricsWriter {
 public:
  // Creates parent folders; appends to an existing file (resumed runs continue it).
  explicit MetricsWriter(std::string path);
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  // Adds "time" (unix seconds) when missing, then appends the line.
  void write(nlohmann::json record);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace harvest
