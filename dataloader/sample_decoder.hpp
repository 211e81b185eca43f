// SampleDecoder: one training sample (manifest row, epoch) -> its uint8 clip and caption token ids,
// exactly as every data path of a run produces it: SampleRng::for_sample(seed, epoch, index) draws
// frame times, crop, flip and then the caption, so the in-process source and the loader processes
// give byte-identical samples. A file that cannot give a clip comes back marked bad (the skip rule
// is the caller's: the next sample of the shard); every other error propagates.
//
// SkipTally counts bad samples per reason and logs each sample once.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/config/config.hpp"
#include "dataloader/bad_video.hpp"
#include "dataloader/clip_decoder.hpp"
#include "dataloader/manifest.hpp"

namespace harvest::tokenizer {
class Tokenizer;
}

namespace harvest::data {

struct DecodedSample {
  std::vector<uint8_t> pixels;  // [T, S, S, 3] RGB; empty when bad
  std::vector<int32_t> ids;     // caption tokens (SOT ... EOT), at most model.context_length
  std::optional<BadReason> bad;
  std::string bad_message;  // the file and what went wrong, when bad
};

// The training clip options of a config (segment sampling with a random time per segment,
// RandomResizedCrop + flip, data.* limits).
ClipOptions train_clip_options(const Config& config);

class SampleDecoder {
 public:
  SampleDecoder(const Config& config, std::shared_ptr<const Manifest> manifest,
                std::shared_ptr<const tokenizer::Tokenizer> tokenizer);

  // Thread-safe (const); throws only for errors that are not the file's fault.
  DecodedSample decode(uint64_t index, uint64_t epoch) const;

  const Manifest& manifest() const { return *manifest_; }
  size_t clip_bytes() const { return clip_bytes_; }
  int64_t context_length() const { return context_; }

 private:
  std::shared_ptr<const Manifest> manifest_;
  std::shared_ptr<const tokenizer::Tokenizer> tokenizer_;
  ClipOptions options_;
  uint64_t seed_;
  int64_t context_;
  size_t clip_bytes_;
};

// Bad samples skipped by rule: counted per reason, each sample logged once (warn).
class SkipTally {
 public:
  void record(uint64_t index, BadReason reason, const std::string& message);
  // Counts from elsewhere (a loader's batch header names the reason as text).
  void add(const std::string& reason, int64_t count = 1);
  std::map<std::string, int64_t> counts() const { return counts_; }
  int64_t total() const;

 private:
  std::map<std::string, int64_t> counts_;
  std::unordered_set<uint64_t> logged_;
};

}  // namespace harvest::data
