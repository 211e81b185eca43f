// Manifests: one sample per JSONL line (or CSV row). Fields: video (path relative to the root),
// caption or captions[], optional start/end (seconds) and label. Unknown fields are errors, and
// every error names file:line:field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace harvest::data {

struct ManifestEntry {
  std::string video;
  std::vector<std::string> captions;
  std::optional<double> start;
  std::optional<double> end;
  std::string label;
  int64_t line = 0;  // where it came from (1-based), for messages
};

struct Manifest {
  std::string path;
  std::string root;  // video paths are relative to this
  std::vector<ManifestEntry> entries;
  std::string video_path(const ManifestEntry& e) const;  // root joined with the entry's path
};

// .csv: a header row naming the columns (video, caption, captions as a JSON array, start, end,
// label); anything else: JSONL. root empty: the manifest's folder.
Manifest load_manifest(const std::string& path, const std::string& root = "");

// Checks one entry (caption or label present, 0 <= start < end); `where` prefixes the message.
void validate_entry(const ManifestEntry& e, const std::string& where);

// JSONL, one entry a line ("caption" when there is exactly one); written atomically.
void write_manifest_jsonl(const std::string& path, const std::vector<ManifestEntry>& entries);

// RFC 4180 CSV: splits one record that may span lines; returns false at end of input.
bool read_csv_record(std::istream& in, std::vector<std::string>& fields, int64_t& line);

}  // namespace harvest::data
