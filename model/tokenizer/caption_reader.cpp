#include "model/tokenizer/caption_reader.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/json.hpp"
#include "core/error.hpp"

namespace harvest::tokenizer {

namespace {

size_t read_jsonl(const std::string& path, std::istream& in,
                  const std::function<void(std::string_view)>& on_caption) {
  size_t count = 0;
  size_t line_no = 0;
  std::string line;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const nlohmann::json row = parse_json_or_discarded(line);
    HARVEST_REQUIRE(!row.is_discarded(), Config, path, ":", line_no, ": not valid JSON (or nested deeper than ",
                    kMaxJsonDepth, " levels)");
    HARVEST_REQUIRE(row.is_object(), Config, path, ":", line_no, ": expected a JSON object");
    bool found = false;
    if (row.contains("caption")) {
      HARVEST_REQUIRE(row["caption"].is_string(), Config, path, ":", line_no,
                      ": field \"caption\" must be a string");
      on_caption(row["caption"].get_ref<const std::string&>());
      ++count;
      found = true;
    }
    if (row.contains("captions")) {
      const auto& list = row["captions"];
      HARVEST_REQUIRE(list.is_array(), Config, path, ":", line_no,
                      ": field \"captions\" must be an array of strings");
      for (const auto& caption : list) {
        HARVEST_REQUIRE(caption.is_string(), Config, path, ":", line_no,
                        ": field \"captions\" must be an array of strings");
        on_caption(caption.get_ref<const std::string&>());
        ++count;
      }
      found = true;
    }
    HARVEST_REQUIRE(found, Config, path, ":", line_no,
                    ": no \"caption\" (string) or \"captions\" (array) field");
  }
  return count;
}

// One CSV record (may span lines inside quotes); false at end of input.
bool read_csv_record(std::istream& in, std::vector<std::string>& fields, size_t& line_no,
                     const std::string& path) {
  fields.clear();
  if (in.peek() == std::char_traits<char>::eof()) return false;
  const size_t first_line = line_no + 1;
  std::string field;
  bool quoted = false, in_quotes = false;
  for (;;) {
    const int c = in.get();
    if (c == std::char_traits<char>::eof()) {
      HARVEST_REQUIRE(!in_quotes, Config, path, ":", first_line, ": unterminated quoted field");
      fields.push_back(std::move(field));
      ++line_no;
      return true;
    }
    if (in_quotes) {
      if (c == '"') {
        if (in.peek() == '"') {
          in.get();
          field.push_back('"');
        } else {
          in_quotes = false;
        }
      } else {
        if (c == '\n') ++line_no;
        field.push_back(static_cast<char>(c));
      }
      continue;
    }
    if (c == '"' && field.empty() && !quoted) {
      in_quotes = quoted = true;
    } else if (c == ',') {
      fields.push_back(std::move(field));
      field.clear();
      quoted = false;
    } else if (c == '\n') {
      if (!field.empty() && field.back() == '\r' && !quoted) field.pop_back();
      fields.push_back(std::move(field));
      ++line_no;
      return true;
    } else if (c == '\r' && quoted) {
      // CRLF after a closing quote
    } else {
      HARVEST_REQUIRE(!quoted, Config, path, ":", line_no + 1,
                      ": text after a closing quote in a CSV field");
      field.push_back(static_cast<char>(c));
    }
  }
}

size_t read_csv(const std::string& path, std::istream& in,
                const std::function<void(std::string_view)>& on_caption) {
  size_t line_no = 0;
  std::vector<std::string> fields;
  HARVEST_REQUIRE(read_csv_record(in, fields, line_no, path), Config, path,
                  ": empty CSV file (expected a header row with a \"caption\" column)");
  const auto column = std::find(fields.begin(), fields.end(), "caption");
  HARVEST_REQUIRE(column != fields.end(), Config, path, ":1: no \"caption\" column in the header");
  const size_t index = static_cast<size_t>(column - fields.begin());
  const size_t width = fields.size();
  size_t count = 0;
  while (read_csv_record(in, fields, line_no, path)) {
    if (fields.size() == 1 && fields[0].empty()) continue;  // blank line
    HARVEST_REQUIRE(fields.size() == width, Config, path, ":", line_no, ": ", fields.size(),
                    " fields, the header has ", width);
    on_caption(fields[index]);
    ++count;
  }
  return count;
}

}  // namespace

size_t read_captions(const std::string& path,
                     const std::function<void(std::string_view caption)>& on_caption) {
  HARVEST_REQUIRE(std::filesystem::is_regular_file(path), Runtime, path,
                  ": no such manifest file");
  std::ifstream in(path, std::ios::binary);
  HARVEST_REQUIRE(in.good(), Runtime, path, ": cannot open");
  if (std::filesystem::path(path).extension() == ".csv") return read_csv(path, in, on_caption);
  return read_jsonl(path, in, on_caption);
}

}  // namespace harvest::tokenizer
