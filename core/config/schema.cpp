#include "core/config/schema.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <sstream>

namespace harvest::config_detail {

bool Range::contains(double v) const {
  if (std::isnan(v)) return false;
  const bool above = lo_open ? v > lo : v >= lo;
  const bool below = hi_open ? v < hi : v <= hi;
  return above && below;
}

std::string Range::text() const {
  auto end = [](double x) {
    if (std::isinf(x)) return std::string(x > 0 ? "inf" : "-inf");
    return format_double(x);
  };
  return std::string(lo_open ? "(" : "[") + end(lo) + ", " + end(hi) + (hi_open ? ")" : "]");
}

const Field* Section::find(const std::string& key) const {
  for (const auto& f : fields)
    if (f.key == key) return &f;
  return nullptr;
}

std::string node_type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    default: return "nothing";
  }
}

std::string format_double(double v) {
  // Shortest decimal form that reads back to the same double.
  std::string text;
  for (int p = 1; p <= std::numeric_limits<double>::max_digits10; ++p) {
    std::ostringstream s;
    s.precision(p);
    s << v;
    text = s.str();
    // strtod, not stod: stod throws out_of_range for subnormal numbers (ERANGE), which made a
    // config with 1e-310 in it fail with a bare "stod".
    if (std::isinf(v) || std::isnan(v) || std::strtod(text.c_str(), nullptr) == v) break;
  }
  return text;
}

std::string toml_float(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  std::string text = format_double(v);
  if (text.find_first_of(".eE") == std::string::npos) text += ".0";
  return text;
}

std::string toml_string(const std::string& v) {
  std::string out = "\"";
  for (const unsigned char c : v) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string join_choices(const std::vector<std::string>& choices) {
  std::string out;
  for (size_t i = 0; i < choices.size(); ++i) out += (i ? ", " : "") + choices[i];
  return out;
}

std::string choice_error(const std::string& v, const std::vector<std::string>& choices) {
  if (choices.empty() || std::find(choices.begin(), choices.end(), v) != choices.end()) return "";
  std::string msg = "must be one of: " + join_choices(choices) + " (got '" + v + "')";
  if (auto guess = did_you_mean(v, choices); !guess.empty()) msg += "; did you mean '" + guess + "'?";
  return msg;
}

namespace {
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t sub = prev[j - 1] + (std::tolower(a[i - 1]) == std::tolower(b[j - 1]) ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}
}  // namespace

std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = std::numeric_limits<size_t>::max();
  for (const auto& c : candidates) {
    const size_t d = edit_distance(word, c);
    if (d < best_d) best_d = d, best = c;
  }
  const size_t limit = std::max<size_t>(2, word.size() / 3);
  return best_d <= limit ? best : "";
}

}  // namespace harvest::config_detail
