#include "eval/eval_set.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <tuple>

#include "core/files.hpp"
#include "core/json.hpp"
#include "core/error.hpp"
#include "dataloader/manifest.hpp"

namespace harvest::eval {

Task parse_task(const std::string& text, const std::string& flag) {
  if (text == "retrieval") return Task::Retrieval;
  if (text == "classification") return Task::Classification;
  if (text == "mcqa") return Task::Mcqa;
  fail(ErrorKind::Usage, flag, ": unknown task '", text,
       "' (expected retrieval, classification or mcqa)");
}

const char* task_name(Task task) {
  switch (task) {
    case Task::Retrieval:
      return "retrieval";
    case Task::Classification:
      return "classification";
    case Task::Mcqa:
      return "mcqa";
  }
  return "?";
}

CaptionUse parse_caption_use(const std::string& text, const std::string& flag) {
  if (text == "all") return CaptionUse::All;
  if (text == "first") return CaptionUse::First;
  fail(ErrorKind::Usage, flag, ": '", text, "' (expected all or first)");
}

const char* caption_use_name(CaptionUse use) {
  return use == CaptionUse::All ? "all" : "first";
}

std::vector<std::pair<int64_t, std::string>> read_lines(const std::string& path, const char* what) {
  require_regular_file(path, ErrorKind::Usage, what);
  std::ifstream in(path, std::ios::binary);
  HARVEST_REQUIRE(in, Usage, path, ": cannot open ", what);
  std::vector<std::pair<int64_t, std::string>> out;
  std::string line;
  int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    out.emplace_back(number, line);
  }
  HARVEST_REQUIRE(!out.empty(), Usage, path, ": empty ", what);
  return out;
}

namespace {

EvalVideo video_of(const data::Manifest& m, const data::ManifestEntry& e) {
  return EvalVideo{m.video_path(e), e.start, e.end, e.line};
}

data::Manifest load_nonempty(const std::string& manifest, const std::string& root) {
  data::Manifest m = data::load_manifest(manifest, root);
  HARVEST_REQUIRE(!m.entries.empty(), Usage, manifest, ": no samples to evaluate");
  return m;
}

}  // namespace

RetrievalSet load_retrieval_set(const std::string& manifest, const std::string& root,
                                CaptionUse use) {
  const data::Manifest m = load_nonempty(manifest, root);
  RetrievalSet set;
  set.manifest = manifest;
  // Rows naming the same clip (path and span) are one video: listed twice it would compete with
  // itself, and under the pessimistic tie rule its own duplicate would outrank it.
  std::map<std::tuple<std::string, double, double>, size_t> seen;
  std::vector<std::vector<std::string>> captions;
  for (const data::ManifestEntry& e : m.entries) {
    const std::string where = manifest + ":" + std::to_string(e.line);
    HARVEST_REQUIRE(!e.captions.empty(), Usage, where,
                    ":caption: retrieval needs a caption or captions for every video");
    const EvalVideo video = video_of(m, e);
    const auto key = std::make_tuple(video.path, video.start.value_or(-1), video.end.value_or(-1));
    const auto [it, fresh] = seen.emplace(key, set.videos.size());
    if (fresh) {
      set.videos.push_back(video);
      captions.emplace_back();
    } else {
      ++set.merged_rows;
    }
    std::vector<std::string>& mine = captions[it->second];
    mine.insert(mine.end(), e.captions.begin(), e.captions.end());
  }
  set.min_per_video = INT64_MAX;
  for (size_t v = 0; v < captions.size(); ++v) {
    const int64_t count = static_cast<int64_t>(captions[v].size());
    set.captions_in_manifest += count;
    set.min_per_video = std::min(set.min_per_video, count);
    set.max_per_video = std::max(set.max_per_video, count);
    for (int64_t c = 0; c < (use == CaptionUse::All ? count : 1); ++c) {
      set.captions.push_back(captions[v][static_cast<size_t>(c)]);
      set.text_to_video.push_back(static_cast<int64_t>(v));
    }
  }
  return set;
}

ClassificationSet load_classification_set(const std::string& manifest, const std::string& root,
                                          const std::string& classes_file,
                                          const std::string& templates_file) {
  const data::Manifest m = load_nonempty(manifest, root);
  ClassificationSet set;
  set.manifest = manifest;
  set.classes_file = classes_file;
  set.templates_file = templates_file;
  std::map<std::string, int64_t> index;
  if (!classes_file.empty()) {
    for (const auto& [line, name] : read_lines(classes_file, "class-name file")) {
      const bool fresh = index.emplace(name, static_cast<int64_t>(set.classes.size())).second;
      HARVEST_REQUIRE(fresh, Usage, classes_file, ":", line, ": class '", name,
                      "' is listed twice");
      set.classes.push_back(name);
    }
  } else {
    for (const data::ManifestEntry& e : m.entries)
      if (!e.label.empty()) index.emplace(e.label, 0);
    for (auto& [name, i] : index) {
      i = static_cast<int64_t>(set.classes.size());
      set.classes.push_back(name);
    }
  }
  for (const data::ManifestEntry& e : m.entries) {
    const std::string where = manifest + ":" + std::to_string(e.line);
    HARVEST_REQUIRE(!e.label.empty(), Usage, where,
                    ":label: classification needs a label for every video");
    const auto it = index.find(e.label);
    HARVEST_REQUIRE(it != index.end(), Usage, where, ":label: '", e.label, "' is not a class of ",
                    classes_file);
    set.videos.push_back(video_of(m, e));
    set.labels.push_back(it->second);
  }
  if (templates_file.empty()) {
    set.templates = {"{}"};
  } else {
    for (const auto& [line, text] : read_lines(templates_file, "template file")) {
      const size_t at = text.find("{}");
      HARVEST_REQUIRE(at != std::string::npos && text.find("{}", at + 2) == std::string::npos,
                      Usage, templates_file, ":", line, ": a template needs exactly one {} (got '",
                      text, "')");
      set.templates.push_back(text);
    }
  }
  return set;
}

McqaSet load_mcqa_set(const std::string& manifest, const std::string& root_arg) {
  require_regular_file(manifest, ErrorKind::Usage, "multiple-choice manifest");
  std::ifstream in(manifest, std::ios::binary);
  HARVEST_REQUIRE(in, Usage, manifest, ": cannot open the multiple-choice manifest");
  const std::string root =
      root_arg.empty() ? std::filesystem::path(manifest).parent_path().string() : root_arg;
  McqaSet set;
  set.manifest = manifest;
  std::string text;
  int64_t line = 0;
  while (std::getline(in, text)) {
    ++line;
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = manifest + ":" + std::to_string(line);
    const auto j = parse_json_or_discarded(text);
    HARVEST_REQUIRE(!j.is_discarded() && j.is_object(), Usage, where, ": not a JSON object");
    EvalVideo video;
    video.line = line;
    std::vector<std::string> candidates;
    std::optional<int64_t> answer;
    for (const auto& [key, value] : j.items()) {
      if (key == "video") {
        HARVEST_REQUIRE(value.is_string() && !value.get<std::string>().empty(), Usage, where,
                        ":video: expected a non-empty string, got ", json_excerpt(value));
        const std::filesystem::path p(value.get<std::string>());
        video.path = p.is_absolute() || root.empty() ? p.string()
                                                     : (std::filesystem::path(root) / p).string();
      } else if (key == "candidates") {
        HARVEST_REQUIRE(value.is_array() && value.size() >= 2, Usage, where,
                        ":candidates: expected an array of at least 2 strings, got ", json_excerpt(value));
        for (const auto& c : value) {
          HARVEST_REQUIRE(c.is_string() && !c.get<std::string>().empty(), Usage, where,
                          ":candidates: every candidate must be a non-empty string, got ",
                          json_excerpt(c));
          candidates.push_back(c.get<std::string>());
        }
      } else if (key == "answer") {
        HARVEST_REQUIRE(value.is_number_integer(), Usage, where,
                        ":answer: expected the 0-based index of the right candidate, got ",
                        json_excerpt(value));
        answer = value.get<int64_t>();
      } else if (key == "start" || key == "end") {
        HARVEST_REQUIRE(
            value.is_number() && std::isfinite(value.get<double>()) && value.get<double>() >= 0,
            Usage, where, ":", key, ": expected seconds >= 0, got ", json_excerpt(value));
        (key == "start" ? video.start : video.end) = value.get<double>();
      } else {
        fail(ErrorKind::Usage, where, ":", key,
             ": unknown field (expected video, candidates, answer, start, end)");
      }
    }
    HARVEST_REQUIRE(!video.path.empty(), Usage, where, ":video: missing");
    HARVEST_REQUIRE(!candidates.empty(), Usage, where, ":candidates: missing");
    HARVEST_REQUIRE(answer.has_value(), Usage, where, ":answer: missing");
    HARVEST_REQUIRE(*answer >= 0 && *answer < static_cast<int64_t>(candidates.size()), Usage, where,
                    ":answer: ", *answer, " is not an index into ", candidates.size(),
                    " candidates");
    if (video.start && video.end)
      HARVEST_REQUIRE(*video.start < *video.end, Usage, where, ":end: must be after start");
    if (!set.candidates.empty())
      HARVEST_REQUIRE(candidates.size() == set.candidates.front().size(), Usage, where,
                      ":candidates: ", candidates.size(),
                      " candidates, but the first question has ", set.candidates.front().size(),
                      " (every question needs the same number)");
    set.videos.push_back(std::move(video));
    set.candidates.push_back(std::move(candidates));
    set.answers.push_back(*answer);
  }
  HARVEST_REQUIRE(!set.videos.empty(), Usage, manifest, ": no questions to evaluate");
  return set;
}

}  // namespace harvest::eval
