// Internal: the declarative key table behind Config (see sections.cpp).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "core/config/config.hpp"

namespace harvest::config_detail {

// Numeric bounds; open ends are excluded ("[0, 1)").
struct Range {
  double lo;
  double hi;
  bool lo_open = false;
  bool hi_open = false;
  bool contains(double v) const;
  std::string text() const;
};

struct Field {
  std::string key;
  std::string type;        // as shown in docs: integer, float, boolean, string, array of strings
  std::string constraint;  // "in [0, 1)", "one of: a, b" or ""
  std::string doc;
  // Parses `node` into the section object; returns "" or a message (without the key/position).
  std::function<std::string(const toml::node&, void*)> assign;
  // The current value as a TOML literal ("0.5", "\"B/16\"", "[\"a\"]").
  std::function<std::string(const void*)> literal;
};

struct Section {
  std::string name;
  std::string doc;
  std::vector<Field> fields;
  std::function<void*(Config&)> get;
  std::function<const void*(const Config&)> cget;
  const Field* find(const std::string& key) const;
};

// Shared helpers, implemented in schema.cpp.
std::string node_type_name(const toml::node& n);
std::string format_double(double v);
std::string join_choices(const std::vector<std::string>& choices);
std::string choice_error(const std::string& v, const std::vector<std::string>& choices);
std::string toml_float(double v);            // shortest round-trip form, always a TOML float
std::string toml_string(const std::string& v);  // basic string with escapes

// Builds a Section for struct S with typed member pointers.
template <class S>
class SectionBuilder {
 public:
  SectionBuilder(std::string name, std::string doc, S Config::*member) {
    section_.name = std::move(name);
    section_.doc = std::move(doc);
    section_.get = [member](Config& c) -> void* { return &(c.*member); };
    section_.cget = [member](const Config& c) -> const void* { return &(c.*member); };
  }

  SectionBuilder& integer(const char* key, int64_t S::*m, Range range, const char* doc) {
    return add(key, "integer", "in " + range.text(), doc,
               [m, range](const toml::node& n, void* s) -> std::string {
                 if (!n.is_integer()) return "expected an integer, got " + type_of(n);
                 const int64_t v = *n.value<int64_t>();
                 if (!range.contains(static_cast<double>(v)))
                   return "must be in " + range.text() + " (got " + std::to_string(v) + ")";
                 static_cast<S*>(s)->*m = v;
                 return "";
               },
               [m](const void* s) { return std::to_string(static_cast<const S*>(s)->*m); });
  }

  SectionBuilder& real(const char* key, double S::*m, Range range, const char* doc) {
    return add(key, "float", "in " + range.text(), doc,
               [m, range](const toml::node& n, void* s) -> std::string {
                 if (!n.is_number()) return "expected a number, got " + type_of(n);
                 const double v = *n.value<double>();
                 if (!range.contains(v))
                   return "must be in " + range.text() + " (got " + format_number(v) + ")";
                 static_cast<S*>(s)->*m = v;
                 return "";
               },
               [m](const void* s) { return toml_float(static_cast<const S*>(s)->*m); });
  }

  SectionBuilder& boolean(const char* key, bool S::*m, const char* doc) {
    return add(key, "boolean", "", doc,
               [m](const toml::node& n, void* s) -> std::string {
                 if (!n.is_boolean()) return "expected true or false, got " + type_of(n);
                 static_cast<S*>(s)->*m = *n.value<bool>();
                 return "";
               },
               [m](const void* s) { return std::string(static_cast<const S*>(s)->*m ? "true" : "false"); });
  }

  // choices empty: any string.
  SectionBuilder& text(const char* key, std::string S::*m, std::vector<std::string> choices,
                       const char* doc) {
    return add(key, "string", choices_text(choices), doc,
               [m, choices](const toml::node& n, void* s) -> std::string {
                 if (!n.is_string()) return "expected a string, got " + type_of(n);
                 const std::string v = *n.value<std::string>();
                 if (auto err = check_choice(v, choices); !err.empty()) return err;
                 static_cast<S*>(s)->*m = v;
                 return "";
               },
               [m](const void* s) { return toml_string(static_cast<const S*>(s)->*m); });
  }

  SectionBuilder& texts(const char* key, std::vector<std::string> S::*m,
                        std::vector<std::string> choices, const char* doc) {
    return add(key, "array of strings", choices_text(choices), doc,
               [m, choices](const toml::node& n, void* s) -> std::string {
                 const auto* arr = n.as_array();
                 if (!arr) return "expected an array of strings, got " + type_of(n);
                 std::vector<std::string> out;
                 for (const auto& item : *arr) {
                   if (!item.is_string()) return "expected an array of strings, found " + type_of(item);
                   out.push_back(*item.value<std::string>());
                   if (auto err = check_choice(out.back(), choices); !err.empty()) return err;
                 }
                 static_cast<S*>(s)->*m = std::move(out);
                 return "";
               },
               [m](const void* s) {
                 std::string out = "[";
                 for (const auto& v : static_cast<const S*>(s)->*m)
                   out += (out.size() > 1 ? ", " : "") + toml_string(v);
                 return out + "]";
               });
  }

  Section build() { return std::move(section_); }

  static std::string type_of(const toml::node& n);
  static std::string format_number(double v);
  static std::string choices_text(const std::vector<std::string>& choices);
  static std::string check_choice(const std::string& v, const std::vector<std::string>& choices);

 private:
  template <class Assign, class Emit>
  SectionBuilder& add(const char* key, const char* type, std::string constraint, const char* doc,
                      Assign assign, Emit literal) {
    section_.fields.push_back(Field{key, type, std::move(constraint), doc, assign, literal});
    return *this;
  }
  Section section_;
};


template <class S>
std::string SectionBuilder<S>::type_of(const toml::node& n) { return node_type_name(n); }
template <class S>
std::string SectionBuilder<S>::format_number(double v) { return format_double(v); }
template <class S>
std::string SectionBuilder<S>::choices_text(const std::vector<std::string>& c) {
  return c.empty() ? "" : "one of: " + join_choices(c);
}
template <class S>
std::string SectionBuilder<S>::check_choice(const std::string& v, const std::vector<std::string>& c) {
  return choice_error(v, c);
}

// All sections in order (defined in sections.cpp).
const std::vector<Section>& all_sections();

// Closest candidate within a small edit distance, or "".
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace harvest::config_detail
