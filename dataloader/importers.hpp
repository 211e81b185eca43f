// Importers: published annotation files of public video-text datasets -> harvest manifests.
//   webvid    CSV  videoid,contentUrl,duration,page_dir,name        caption = name
//   internvid JSONL YoutubeID,Start_timestamp,End_timestamp,Caption  start/end from the
//   HH:MM:SS.mmm stamps msrvtt    JSON  {"videos":[{video_id,split}],
//   "sentences":[{video_id,caption}]}  all captions of a video kinetics  CSV
//   label,youtube_id,time_start,time_end,split       label only (trimmed clips: no start/end)
// The video path comes from a template over the record's fields: "{page_dir}/{videoid}.mp4",
// "{label}/{youtube_id}_{time_start:06}_{time_end:06}.mp4" ({name:06}: integer, zero-padded).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "dataloader/manifest.hpp"

namespace harvest::data {

enum class ImportFormat { WebVid, InternVid, MsrVtt, Kinetics };

// Throws Usage naming --format for anything but webvid|internvid|msrvtt|kinetics.
ImportFormat parse_import_format(const std::string& name);

struct ImportOptions {
  ImportFormat format = ImportFormat::WebVid;
  std::string annotations;
  std::string path_template;
  std::string split;  // msrvtt/kinetics: keep only records of this split (empty: all)
};

std::vector<ManifestEntry> import_annotations(const ImportOptions& options);

// Expands {field} / {field:0N}; `where` names the record in errors (unknown field, not a number).
std::string expand_template(const std::string& tmpl,
                            const std::map<std::string, std::string>& fields,
                            const std::string& where);

// "HH:MM:SS.mmm" (or "MM:SS", or plain seconds) -> seconds; throws Config naming `where`.
double parse_timestamp(const std::string& text, const std::string& where);

}  // namespace harvest::data
