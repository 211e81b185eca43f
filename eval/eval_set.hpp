// What one eval task runs on: the videos of a manifest (in manifest order) and the texts they are
// scored against. Retrieval and classification read data manifests (dataloader/manifest.hpp);
// multiple-choice QA reads its own JSONL format (docs/eval.md):
//   {"video": "v.mp4", "candidates": ["a ...", "b ...", ...], "answer": 2, "start": 1.5, "end": 9}
// Every error names the file, the line and the field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace harvest::eval {

enum class Task { Retrieval, Classification, Mcqa };

// "retrieval" | "classification" | "mcqa"; throws Usage naming `flag` otherwise.
Task parse_task(const std::string& text, const std::string& flag);
const char* task_name(Task task);

struct EvalVideo {
  std::string path;  // joined with the manifest's root
  std::optional<double> start, end;
  int64_t line = 0;  // in the manifest, for messages
};

// How a retrieval manifest's captions become text queries.
enum class CaptionUse {
  All,    // every caption is a query; a video's video-to-text rank is its best caption's
  First,  // only each video's first caption (the "1 caption per video" protocol)
};
CaptionUse parse_caption_use(const std::string& text, const std::string& flag);
const char* caption_use_name(CaptionUse use);

struct RetrievalSet {
  std::string manifest;
  std::vector<EvalVideo> videos;
  std::vector<std::string> captions;             // queries, grouped by video in manifest order
  std::vector<int64_t> text_to_video;            // captions[t] describes videos[text_to_video[t]]
  int64_t captions_in_manifest = 0;              // before `use` dropped any
  int64_t min_per_video = 0, max_per_video = 0;  // captions per video in the manifest
  int64_t merged_rows = 0;  // rows naming a clip (path, start, end) an earlier row named
};
// Rows naming the same clip are merged into one video with all their captions, in row order.
RetrievalSet load_retrieval_set(const std::string& manifest, const std::string& root,
                                CaptionUse use);

struct ClassificationSet {
  std::string manifest;
  std::vector<EvalVideo> videos;
  std::vector<int64_t> labels;         // index into classes
  std::vector<std::string> classes;    // class names, in the class file's order
  std::vector<std::string> templates;  // prompts with "{}" where the class name goes
  std::string classes_file;            // empty: classes are the manifest's labels, sorted
  std::string templates_file;          // empty: the single template "{}"
};
// `classes_file`: one class name a line (blank lines skipped); every manifest label must be one of
// them. `templates_file`: one template a line, each with exactly one "{}".
ClassificationSet load_classification_set(const std::string& manifest, const std::string& root,
                                          const std::string& classes_file,
                                          const std::string& templates_file);

struct McqaSet {
  std::string manifest;
  std::vector<EvalVideo> videos;
  std::vector<std::vector<std::string>> candidates;  // per video, the same count K for all
  std::vector<int64_t> answers;                      // in [0, K)
};
McqaSet load_mcqa_set(const std::string& manifest, const std::string& root);

// Lines of a text file with the trailing '\r' removed, blank lines dropped, each with its line
// number.
std::vector<std::pair<int64_t, std::string>> read_lines(const std::string& path, const char* what);

}  // namespace harvest::eval
