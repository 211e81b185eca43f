// Embeddings of text, images and videos with a loaded model (`harvest embed`, eval tasks).
// Preprocessing as CLIP's: the shorter side resized to the model's input size (bicubic,
// antialiased, rounded to 8 bits as PIL does), a centre crop, CLIP mean/std (configurable).
// A video is sampled at the middles of T equal segments; an image is a 1-frame video.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "eval/model_file.hpp"

namespace harvest::eval {

struct EmbedOptions {
  PixelNorm norm;
  int64_t frames = 0;  // frames per video; 0: the model's
  int decode_threads = 1;
};

// uint8 [T, H, W, 3] -> uint8 [T, size, size, 3]: shorter side to `size` (the longer side scaled
// to floor(size x long / short)), bicubic with antialiasing, rounded; then the centre crop.
at::Tensor resize_center_crop(const at::Tensor& frames, int64_t size);

// `frames` frames of `path` (any FFmpeg-readable video or image) at full resolution, uint8
// [T, H, W, 3] RGB, upright. Throws Runtime naming the file when it cannot be decoded.
at::Tensor read_media_frames(const std::string& path, int64_t frames, int decode_threads = 1);

class Embedder {
 public:
  Embedder(LoadedModel& model, EmbedOptions options);

  // L2-normalised [N, embed_dim] float on the CPU, in input order (computed on the model's device).
  at::Tensor texts(const std::vector<std::string>& texts);
  at::Tensor image(const std::string& path);
  at::Tensor video(const std::string& path);
  // Preprocessed uint8 [B, T, S, S, 3] clips -> L2-normalised [B, embed_dim].
  at::Tensor clips(const at::Tensor& video);

 private:
  LoadedModel& model_;
  EmbedOptions options_;
};

}  // namespace harvest::eval
