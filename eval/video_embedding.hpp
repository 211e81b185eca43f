// Eval-time video embeddings of a whole list of videos: decode threads (dataloader's DecodePool,
// each with a per-video deadline) run ahead of the model, which embeds full batches in manifest
// order. Eval preprocessing follows the recipe: the middle frame of each of T equal segments
// (short videos repeat the last frame), the whole frame resized to S x S (bicubic, FFmpeg's
// swscale), CLIP mean/std. A video that cannot be decoded stops the eval naming the file: results
// over a silently smaller set would not be comparable.
//
// Why threads and not the loader processes: eval reads each video once in a fixed order, so the
// loaders' sharding, credit and restart machinery buys nothing; threads in this process keep the
// uint8 clips in memory the model reads directly (docs/eval.md has the measurements).
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "eval/cancel.hpp"
#include "eval/eval_set.hpp"
#include "model/video_text_model.hpp"

namespace harvest::eval {

struct VideoEmbedOptions {
  int64_t frames = 8;
  int64_t size = 224;
  int64_t batch_size = 32;
  int decode_threads = 1;
  double decode_deadline_s = 120.0;  // one video's decode; past it the eval fails naming the file
  PixelNorm norm;
  bool progress = true;  // progress bar on a terminal, else a log line with ETA every ~10 s
  std::string label = "videos";
  const std::atomic<bool>* cancel = nullptr;  // set: checked before each batch (throws Cancelled)
};

struct VideoEmbedStats {
  int64_t clips = 0;
  double seconds = 0;        // wall time of the whole pass
  double decode_wait_s = 0;  // time the model waited for decoded clips
  double forward_s = 0;      // time in the video encoder
  double clips_per_s() const { return seconds > 0 ? static_cast<double>(clips) / seconds : 0.0; }
};

// L2-normalised [videos.size(), embed_dim] float on the CPU, in input order; the model runs on
// its own device (uint8 batches are moved there and normalised there).
at::Tensor embed_videos(VideoTextModelImpl& model, const std::vector<EvalVideo>& videos,
                        const VideoEmbedOptions& options, VideoEmbedStats* stats = nullptr);

// Progress with rate and ETA: a bar on a terminal, else a log line every `every_s` seconds.
class EtaReporter {
 public:
  EtaReporter(std::string label, int64_t total, bool enabled, double every_s = 10.0);
  void update(int64_t done);
  void finish();
  ~EtaReporter();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace harvest::eval
