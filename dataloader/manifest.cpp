#include "dataloader/manifest.hpp"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <istream>
#include <nlohmann/json.hpp>

#include "core/files.hpp"
#include "core/json.hpp"
#include "core/error.hpp"

namespace harvest::data {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

double seconds_field(const nlohmann::json& v, const std::string& where, const char* field) {
  HARVEST_REQUIRE(v.is_number(), Config, where, ":", field, ": expected a number of seconds, got ",
                  json_excerpt(v));
  const double s = v.get<double>();
  HARVEST_REQUIRE(std::isfinite(s) && s >= 0, Config, where, ":", field, ": must be >= 0, got ", s);
  return s;
}

ManifestEntry entry_from_json(const nlohmann::json& j, const std::string& where) {
  HARVEST_REQUIRE(j.is_object(), Config, where, ": expected a JSON object, got ", j.type_name());
  ManifestEntry e;
  for (const auto& [key, value] : j.items()) {
    if (key == "video") {
      HARVEST_REQUIRE(value.is_string() && !value.get<std::string>().empty(), Config, where,
                      ":video: expected a non-empty string, got ", json_excerpt(value));
      e.video = value.get<std::string>();
    } else if (key == "caption") {
      HARVEST_REQUIRE(value.is_string(), Config, where, ":caption: expected a string, got ",
                      json_excerpt(value));
      e.captions.push_back(value.get<std::string>());
    } else if (key == "captions") {
      HARVEST_REQUIRE(value.is_array() && !value.empty(), Config, where,
                      ":captions: expected a non-empty array of strings, got ", json_excerpt(value));
      for (const auto& c : value) {
        HARVEST_REQUIRE(c.is_string(), Config, where,
                        ":captions: every caption must be a string, got ", json_excerpt(c));
        e.captions.push_back(c.get<std::string>());
      }
    } else if (key == "start") {
      e.start = seconds_field(value, where, "start");
    } else if (key == "end") {
      e.end = seconds_field(value, where, "end");
    } else if (key == "label") {
      HARVEST_REQUIRE(value.is_string(), Config, where, ":label: expected a string, got ",
                      json_excerpt(value));
      e.label = value.get<std::string>();
    } else {
      fail(ErrorKind::Config, where, ":", key,
           ": unknown field (expected video, caption, captions, start, end, label)");
    }
  }
  return e;
}

}  // namespace

void validate_entry(const ManifestEntry& e, const std::string& where) {
  HARVEST_REQUIRE(!e.video.empty(), Config, where, ":video: missing");
  HARVEST_REQUIRE(!e.captions.empty() || !e.label.empty(), Config, where,
                  ":caption: missing (need caption, captions or label)");
  for (const auto& c : e.captions)
    HARVEST_REQUIRE(!c.empty(), Config, where, ":caption: empty caption");
  if (e.start && e.end)
    HARVEST_REQUIRE(*e.start < *e.end, Config, where, ":end: must be after start (", *e.start,
                    " >= ", *e.end, ")");
}

bool read_csv_record(std::istream& in, std::vector<std::string>& fields, int64_t& line) {
  fields.clear();
  std::string field;
  bool quoted = false, any = false;
  int c;
  while ((c = in.get()) != EOF) {
    any = true;
    if (quoted) {
      if (c == '"') {
        if (in.peek() == '"') {
          field += '"';
          in.get();
        } else {
          quoted = false;
        }
      } else {
        if (c == '\n') ++line;
        field += static_cast<char>(c);
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.push_back(std::move(field));
      field.clear();
    } else if (c == '\n') {
      ++line;
      if (!field.empty() && field.back() == '\r') field.pop_back();
      fields.push_back(std::move(field));
      return true;
    } else {
      field += static_cast<char>(c);
    }
  }
  if (!any) return false;
  if (!field.empty() && field.back() == '\r') field.pop_back();
  fields.push_back(std::move(field));
  ++line;
  return true;
}

Manifest load_manifest(const std::string& path, const std::string& root) {
  require_regular_file(path, ErrorKind::Config, "manifest");
  std::ifstream in(path, std::ios::binary);
  HARVEST_REQUIRE(in, Config, path, ": cannot open manifest");
  Manifest m;
  m.path = path;
  m.root = root.empty() ? std::filesystem::path(path).parent_path().string() : root;
  if (ends_with(path, ".csv")) {
    std::vector<std::string> header, row;
    int64_t line = 0;
    HARVEST_REQUIRE(read_csv_record(in, header, line), Config, path,
                    ":1: empty CSV (expected a header row)");
    for (const auto& h : header)
      HARVEST_REQUIRE(h == "video" || h == "caption" || h == "captions" || h == "start" ||
                          h == "end" || h == "label",
                      Config, path, ":1:", h,
                      ": unknown column (expected video, caption, captions, start, end, label)");
    while (true) {
      const int64_t first_line = line + 1;
      if (!read_csv_record(in, row, line)) break;
      if (row.size() == 1 && row[0].empty()) continue;  // blank line
      const std::string where = path + ":" + std::to_string(first_line);
      HARVEST_REQUIRE(row.size() == header.size(), Config, where, ": ", row.size(),
                      " fields, the header has ", header.size());
      nlohmann::json j = nlohmann::json::object();
      for (size_t i = 0; i < header.size(); ++i) {
        const std::string& h = header[i];
        if (row[i].empty() && h != "caption") continue;
        if (h == "start" || h == "end") {
          try {
            size_t used = 0;
            const double v = std::stod(row[i], &used);
            HARVEST_REQUIRE(used == row[i].size(), Config, where, ":", h, ": not a number: '",
                            row[i], "'");
            j[h] = v;
          } catch (const std::logic_error&) {
            fail(ErrorKind::Config, where, ":", h, ": not a number: '", row[i], "'");
          }
        } else if (h == "captions") {
          const auto parsed = parse_json_or_discarded(row[i]);
          HARVEST_REQUIRE(!parsed.is_discarded(), Config, where, ":captions: expected a JSON array, got '",
                          row[i].substr(0, 80), row[i].size() > 80 ? "...'" : "'");
          j[h] = parsed;
        } else if (!(h == "caption" && row[i].empty())) {
          j[h] = row[i];
        }
      }
      ManifestEntry e = entry_from_json(j, where);
      e.line = first_line;
      validate_entry(e, where);
      m.entries.push_back(std::move(e));
    }
    HARVEST_REQUIRE(!m.entries.empty(), Config, path, ": the manifest has a header but no rows");
    return m;
  }
  std::string text;
  int64_t line = 0;
  while (std::getline(in, text)) {
    ++line;
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(line);
    const auto j = parse_json_or_discarded(text);
    HARVEST_REQUIRE(!j.is_discarded(), Config, where, ": not valid JSON (or nested deeper than ", kMaxJsonDepth,
                    " levels)");
    ManifestEntry e = entry_from_json(j, where);
    e.line = line;
    validate_entry(e, where);
    m.entries.push_back(std::move(e));
  }
  HARVEST_REQUIRE(!m.entries.empty(), Config, path, ": the manifest has no rows");
  return m;
}

std::string Manifest::video_path(const ManifestEntry& e) const {
  const std::filesystem::path p(e.video);
  return p.is_absolute() || root.empty() ? e.video : (std::filesystem::path(root) / p).string();
}

void write_manifest_jsonl(const std::string& path, const std::vector<ManifestEntry>& entries) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    HARVEST_REQUIRE(out, Runtime, tmp, ": cannot open for writing");
    for (const auto& e : entries) {
      bool text_ok = valid_utf8(e.video) && valid_utf8(e.label);
      for (const auto& c : e.captions) text_ok = text_ok && valid_utf8(c);
      if (!text_ok) {  // JSON text must be UTF-8: refuse before a partial file is left behind
        out.close();
        std::remove(tmp.c_str());
        fail(ErrorKind::Config, path, ": the entry from input line ", e.line,
             " holds text that is not valid UTF-8; nothing was written");
      }
      nlohmann::ordered_json j;
      j["video"] = e.video;
      if (e.captions.size() == 1) j["caption"] = e.captions[0];
      if (e.captions.size() > 1) j["captions"] = e.captions;
      if (e.start) j["start"] = *e.start;
      if (e.end) j["end"] = *e.end;
      if (!e.label.empty()) j["label"] = e.label;
      out << j.dump() << '\n';
    }
    out.flush();
    HARVEST_REQUIRE(out, Runtime, tmp, ": write failed");
  }
  HARVEST_REQUIRE(std::rename(tmp.c_str(), path.c_str()) == 0, Runtime, path, ": rename from ", tmp,
                  " failed");
}

}  // namespace harvest::data
