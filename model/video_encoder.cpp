#include "model/video_encoder.hpp"

#include <cmath>

#include "core/error.hpp"

namespace harvest {

VideoEncoderImpl::VideoEncoderImpl(const VisionOptions& options, int64_t embed_dim, at::Generator& gen)
    : options_(options) {
  const int64_t width = options.width;
  conv1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, width, options.patch_size)
                                                         .stride(options.patch_size)
                                                         .bias(false)));
  const double scale = std::pow(static_cast<double>(width), -0.5);
  class_embedding = register_parameter("class_embedding", torch::empty({width}));
  positional_embedding =
      register_parameter("positional_embedding", torch::empty({options.patches_per_frame() + 1, width}));
  temporal_embedding = register_parameter("temporal_embedding", torch::zeros({options.frames, width}));
  ln_pre = register_module("ln_pre", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width}).eps(1e-5)));
  transformer = register_module("transformer", Transformer(width, options.layers, options.heads,
                                                           parse_activation(options.activation, "model.activation"), gen));
  ln_post = register_module("ln_post", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width}).eps(1e-5)));
  proj = register_parameter("proj", torch::empty({width, embed_dim}));

  // CLIP's initialisation; the conv has PyTorch's default (kaiming-uniform) in CLIP, here N(0, fan_in^-1/2).
  const double conv_std = std::pow(static_cast<double>(3 * options.patch_size * options.patch_size), -0.5);
  init_normal(conv1->weight, conv_std, gen);
  init_normal(class_embedding, scale, gen);
  init_normal(positional_embedding, scale, gen);
  init_normal(proj, scale, gen);
}

at::Tensor VideoEncoderImpl::temporal_embedding_for(int64_t frames) const {
  if (frames == temporal_embedding.size(0)) return temporal_embedding;
  // Linear resampling along time ([1, W, T] -> [1, W, frames]), as F.interpolate(mode="linear").
  namespace F = torch::nn::functional;
  const at::Tensor series = temporal_embedding.t().unsqueeze(0);
  return F::interpolate(series, F::InterpolateFuncOptions()
                                    .size(std::vector<int64_t>{frames})
                                    .mode(torch::kLinear)
                                    .align_corners(false))
      .squeeze(0)
      .t();
}

at::Tensor VideoEncoderImpl::patch_tokens(const at::Tensor& frames) {
  const at::Tensor grid = conv1(frames);  // [B*T, W, g, g]
  return grid.flatten(2).transpose(1, 2) + positional_embedding.narrow(0, 1, options_.patches_per_frame());
}

VideoEncoding VideoEncoderImpl::encode_tokens(const at::Tensor& cls, const at::Tensor& patches) {
  at::Tensor x = ln_pre(at::cat({cls, patches}, 1));
  x = ln_post(transformer(x));
  VideoEncoding out;
  out.embedding = at::matmul(x.select(1, 0), proj);
  out.tokens = x;
  return out;
}

VideoEncoding VideoEncoderImpl::forward(const at::Tensor& video, const at::Tensor& keep) {
  HARVEST_REQUIRE(video.dim() == 5 && video.size(2) == 3 && video.size(3) == options_.image_size &&
                      video.size(4) == options_.image_size,
                  Usage, "VideoEncoder: video must be float [B, T, 3, ", options_.image_size, ", ",
                  options_.image_size, "], got ", video.sizes());
  const int64_t batch = video.size(0), frames = video.size(1), width = options_.width;
  const int64_t per_frame = options_.patches_per_frame();

  at::Tensor patches = patch_tokens(video.flatten(0, 1)).reshape({batch, frames, per_frame, width});
  patches = (patches + temporal_embedding_for(frames).unsqueeze(1)).reshape({batch, frames * per_frame, width});
  if (keep.defined()) {
    HARVEST_REQUIRE(keep.dim() == 2 && keep.size(0) == batch && keep.scalar_type() == torch::kLong, Usage,
                    "VideoEncoder: keep must be int64 [", batch, ", K], got ", keep.sizes());
    patches = patches.gather(1, keep.unsqueeze(-1).expand({batch, keep.size(1), width}));
  }
  const at::Tensor cls = (class_embedding + positional_embedding[0]).expand({batch, 1, width});
  return encode_tokens(cls, patches);
}

at::Tensor VideoEncoderImpl::encode_image(const at::Tensor& images) {
  HARVEST_REQUIRE(images.dim() == 4 && images.size(1) == 3 && images.size(2) == options_.image_size &&
                      images.size(3) == options_.image_size,
                  Usage, "VideoEncoder: images must be float [B, 3, ", options_.image_size, ", ",
                  options_.image_size, "], got ", images.sizes());
  const int64_t batch = images.size(0), width = options_.width;
  const at::Tensor cls = (class_embedding + positional_embedding[0]).expand({batch, 1, width});
  return encode_tokens(cls, patch_tokens(images)).embedding;
}

}  // namespace harvest
