#include "dataloader/importers.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "core/files.hpp"
#include "core/json.hpp"
#include "core/error.hpp"

namespace harvest::data {

namespace {

std::string json_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  return v.dump();
}

// Reads a CSV with a header: one map column -> value per row, plus the line it started on.
struct CsvRow {
  std::map<std::string, std::string> fields;
  int64_t line;
};
std::vector<CsvRow> read_csv(const std::string& path, const std::vector<std::string>& required) {
  require_regular_file(path, ErrorKind::Config, "annotations file");
  std::ifstream in(path, std::ios::binary);
  HARVEST_REQUIRE(in, Config, path, ": cannot open annotations");
  std::vector<std::string> header, row;
  int64_t line = 0;
  HARVEST_REQUIRE(read_csv_record(in, header, line), Config, path,
                  ":1: empty file (expected a CSV header)");
  for (const auto& r : required)
    HARVEST_REQUIRE(std::find(header.begin(), header.end(), r) != header.end(), Config, path,
                    ":1:", r, ": required column missing from the header");
  std::vector<CsvRow> rows;
  while (true) {
    const int64_t first = line + 1;
    if (!read_csv_record(in, row, line)) break;
    if (row.size() == 1 && row[0].empty()) continue;
    HARVEST_REQUIRE(row.size() == header.size(), Config, path, ":", first, ": ", row.size(),
                    " fields, the header has ", header.size());
    CsvRow r{{}, first};
    for (size_t i = 0; i < header.size(); ++i) {
      // Checked here, where the line is known: the manifest writer could only fail half way.
      HARVEST_REQUIRE(valid_utf8(row[i]), Config, path, ":", first, ":", header[i], ": not valid UTF-8");
      r.fields[header[i]] = row[i];
    }
    rows.push_back(std::move(r));
  }
  return rows;
}

std::string where_of(const std::string& path, int64_t line) {
  return path + ":" + std::to_string(line);
}

std::vector<ManifestEntry> import_webvid(const ImportOptions& o) {
  std::vector<ManifestEntry> out;
  for (const auto& r : read_csv(o.annotations, {"videoid", "name"})) {
    const std::string where = where_of(o.annotations, r.line);
    ManifestEntry e;
    e.video = expand_template(o.path_template, r.fields, where);
    e.captions = {r.fields.at("name")};
    e.line = r.line;
    validate_entry(e, where);
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<ManifestEntry> import_kinetics(const ImportOptions& o) {
  std::vector<ManifestEntry> out;
  for (const auto& r : read_csv(o.annotations, {"label", "youtube_id", "time_start", "time_end"})) {
    const auto split = r.fields.find("split");
    if (!o.split.empty() && (split == r.fields.end() || split->second != o.split)) continue;
    const std::string where = where_of(o.annotations, r.line);
    ManifestEntry e;
    e.video = expand_template(o.path_template, r.fields, where);
    e.label = r.fields.at("label");
    e.line = r.line;
    validate_entry(e, where);
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<ManifestEntry> import_internvid(const ImportOptions& o) {
  require_regular_file(o.annotations, ErrorKind::Config, "annotations file");
  require_regular_file(o.annotations, ErrorKind::Config, "annotations file");
  std::ifstream in(o.annotations, std::ios::binary);
  HARVEST_REQUIRE(in, Config, o.annotations, ": cannot open annotations");
  std::vector<ManifestEntry> out;
  std::string text;
  int64_t line = 0;
  while (std::getline(in, text)) {
    ++line;
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = where_of(o.annotations, line);
    const auto j = parse_json_or_discarded(text);
    HARVEST_REQUIRE(!j.is_discarded() && j.is_object(), Config, where, ": not a JSON object");
    std::map<std::string, std::string> fields;
    for (const auto& [k, v] : j.items()) fields[k] = json_text(v);
    for (const char* key : {"YoutubeID", "Start_timestamp", "End_timestamp", "Caption"})
      HARVEST_REQUIRE(fields.count(key), Config, where, ":", key, ": missing");
    ManifestEntry e;
    e.video = expand_template(o.path_template, fields, where);
    e.captions = {fields["Caption"]};
    e.start = parse_timestamp(fields["Start_timestamp"], where + ":Start_timestamp");
    e.end = parse_timestamp(fields["End_timestamp"], where + ":End_timestamp");
    e.line = line;
    validate_entry(e, where);
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<ManifestEntry> import_msrvtt(const ImportOptions& o) {
  require_regular_file(o.annotations, ErrorKind::Config, "annotations file");
  require_regular_file(o.annotations, ErrorKind::Config, "annotations file");
  std::ifstream in(o.annotations, std::ios::binary);
  HARVEST_REQUIRE(in, Config, o.annotations, ": cannot open annotations");
  const auto j = parse_json_or_discarded(in);
  HARVEST_REQUIRE(!j.is_discarded() && j.is_object(), Config, o.annotations, ": not a JSON object");
  HARVEST_REQUIRE(j.contains("videos") && j["videos"].is_array(), Config, o.annotations,
                  ":videos: missing array");
  HARVEST_REQUIRE(j.contains("sentences") && j["sentences"].is_array(), Config, o.annotations,
                  ":sentences: missing array");
  std::unordered_map<std::string, std::vector<std::string>> captions;
  for (size_t i = 0; i < j["sentences"].size(); ++i) {
    const auto& s = j["sentences"][i];
    const std::string where = o.annotations + ":sentences[" + std::to_string(i) + "]";
    HARVEST_REQUIRE(s.is_object() && s.contains("video_id") && s.contains("caption") &&
                        s["caption"].is_string(),
                    Config, where, ": needs video_id and caption (string)");
    captions[json_text(s["video_id"])].push_back(s["caption"].get<std::string>());
  }
  std::vector<ManifestEntry> out;
  for (size_t i = 0; i < j["videos"].size(); ++i) {
    const auto& v = j["videos"][i];
    const std::string where = o.annotations + ":videos[" + std::to_string(i) + "]";
    HARVEST_REQUIRE(v.is_object() && v.contains("video_id"), Config, where, ":video_id: missing");
    std::map<std::string, std::string> fields;
    for (const auto& [k, val] : v.items()) fields[k] = json_text(val);
    if (!o.split.empty() && fields["split"] != o.split) continue;
    auto it = captions.find(fields["video_id"]);
    HARVEST_REQUIRE(it != captions.end(), Config, where, ":video_id: '", fields["video_id"],
                    "' has no sentences");
    ManifestEntry e;
    e.video = expand_template(o.path_template, fields, where);
    e.captions = it->second;
    e.line = static_cast<int64_t>(i) + 1;
    validate_entry(e, where);
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace

ImportFormat parse_import_format(const std::string& name) {
  if (name == "webvid") return ImportFormat::WebVid;
  if (name == "internvid") return ImportFormat::InternVid;
  if (name == "msrvtt") return ImportFormat::MsrVtt;
  if (name == "kinetics") return ImportFormat::Kinetics;
  fail(ErrorKind::Usage, "--format: expected webvid, internvid, msrvtt or kinetics, got '", name,
       "'");
}

std::string expand_template(const std::string& tmpl,
                            const std::map<std::string, std::string>& fields,
                            const std::string& where) {
  std::string out;
  size_t i = 0;
  while (i < tmpl.size()) {
    if (tmpl[i] != '{') {
      out += tmpl[i++];
      continue;
    }
    const size_t close = tmpl.find('}', i);
    HARVEST_REQUIRE(close != std::string::npos, Usage, "--path-template: unclosed '{' in '", tmpl,
                    "'");
    std::string name = tmpl.substr(i + 1, close - i - 1), pad;
    if (const size_t colon = name.find(':'); colon != std::string::npos) {
      pad = name.substr(colon + 1);
      name = name.substr(0, colon);
    }
    const auto it = fields.find(name);
    if (it == fields.end()) {
      std::string known;
      for (const auto& [k, v] : fields) known += (known.empty() ? "" : ", ") + k;
      fail(ErrorKind::Usage, where, ": --path-template field {", name,
           "} is not in the record (fields: ", known, ")");
    }
    if (pad.empty()) {
      out += it->second;
    } else {
      HARVEST_REQUIRE(pad.size() >= 2 && pad[0] == '0' &&
                          pad.find_first_not_of("0123456789") == std::string::npos,
                      Usage, "--path-template: {", name, ":", pad,
                      "}: the format must be 0N (zero-padded width)");
      const int width = std::stoi(pad.substr(1));
      double value = 0;
      try {
        value = std::stod(it->second);
      } catch (const std::logic_error&) {
        fail(ErrorKind::Config, where, ":", name, ": '", it->second,
             "' is not a number (template {", name, ":", pad, "})");
      }
      std::string digits = std::to_string(std::llround(value));
      if (static_cast<int>(digits.size()) < width)
        digits.insert(0, static_cast<size_t>(width) - digits.size(), '0');
      out += digits;
    }
    i = close + 1;
  }
  return out;
}

double parse_timestamp(const std::string& text, const std::string& where) {
  double total = 0;
  size_t pos = 0;
  int parts = 0;
  try {
    while (true) {
      const size_t colon = text.find(':', pos);
      const std::string part =
          text.substr(pos, colon == std::string::npos ? std::string::npos : colon - pos);
      size_t used = 0;
      const double v = std::stod(part, &used);
      HARVEST_REQUIRE(used == part.size() && v >= 0, Config, where, ": bad timestamp '", text, "'");
      total = total * 60 + v;
      ++parts;
      if (colon == std::string::npos) break;
      pos = colon + 1;
    }
  } catch (const std::logic_error&) {
    fail(ErrorKind::Config, where, ": bad timestamp '", text, "' (expected HH:MM:SS.mmm)");
  }
  HARVEST_REQUIRE(parts <= 3, Config, where, ": bad timestamp '", text,
                  "' (expected HH:MM:SS.mmm)");
  return total;
}

std::vector<ManifestEntry> import_annotations(const ImportOptions& o) {
  HARVEST_REQUIRE(!o.path_template.empty(), Usage, "--path-template is required");
  switch (o.format) {
    case ImportFormat::WebVid:
      return import_webvid(o);
    case ImportFormat::InternVid:
      return import_internvid(o);
    case ImportFormat::MsrVtt:
      return import_msrvtt(o);
    case ImportFormat::Kinetics:
      return import_kinetics(o);
  }
  return {};
}

}  // namespace harvest::data
