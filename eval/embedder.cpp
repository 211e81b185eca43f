#include "eval/embedder.hpp"

#include "core/error.hpp"
#include "dataloader/bad_video.hpp"
#include "dataloader/clip_decoder.hpp"

namespace harvest::eval {

at::Tensor resize_center_crop(const at::Tensor& frames, int64_t size) {
  HARVEST_REQUIRE(frames.dim() == 4 && frames.size(3) == 3 && frames.scalar_type() == at::kByte,
                  Usage, "resize_center_crop: expects uint8 [T, H, W, 3], got ", frames.sizes());
  const int64_t h = frames.size(1), w = frames.size(2);
  HARVEST_REQUIRE(h > 0 && w > 0, Usage, "resize_center_crop: empty picture");
  const int64_t shorter = std::min(h, w), longer = std::max(h, w);
  const int64_t scaled_long = std::max<int64_t>(size, size * longer / shorter);
  const int64_t out_h = h <= w ? size : scaled_long, out_w = h <= w ? scaled_long : size;
  at::Tensor x = frames;
  if (out_h != h || out_w != w) {
    const at::Tensor f = frames.permute({0, 3, 1, 2}).to(at::kFloat);
    namespace F = torch::nn::functional;
    x = F::interpolate(f, F::InterpolateFuncOptions()
                              .size(std::vector<int64_t>{out_h, out_w})
                              .mode(torch::kBicubic)
                              .align_corners(false)
                              .antialias(true))
            .round_()
            .clamp_(0, 255)
            .to(at::kByte)
            .permute({0, 2, 3, 1});
  }
  const int64_t top = (out_h - size) / 2, left = (out_w - size) / 2;
  return x.narrow(1, top, size).narrow(2, left, size).contiguous();
}

at::Tensor read_media_frames(const std::string& path, int64_t frames, int decode_threads) {
  data::ReaderOptions reader;
  reader.threads = decode_threads;
  try {
    const data::VideoInfo info = data::VideoReader(path, reader).info();
    data::ClipOptions clip;
    clip.frames = frames;
    clip.out_width = info.display_width();
    clip.out_height = info.display_height();
    clip.sampling = data::Sampling::Middle;
    clip.train_augment = false;
    clip.reader = reader;
    data::SampleRng rng = data::SampleRng::for_sample(0, 0, 0);
    data::Clip decoded = data::decode_clip(path, clip, rng);
    at::Tensor out = at::empty({decoded.frames, decoded.height, decoded.width, 3}, at::kByte);
    std::memcpy(out.data_ptr(), decoded.pixels.data(), decoded.pixels.size());
    return out;
  } catch (const data::BadVideo& e) {
    fail(ErrorKind::Runtime, path, ": cannot embed: ", e.what());
  }
}

Embedder::Embedder(LoadedModel& model, EmbedOptions options) : model_(model), options_(options) {
  HARVEST_REQUIRE(model_.tokenizer.has_value(), Usage, "Embedder: the model has no tokenizer");
  if (options_.frames <= 0) options_.frames = model_.options.vision.frames;
}

at::Tensor Embedder::texts(const std::vector<std::string>& texts) {
  const int64_t embed = model_.options.embed_dim;
  if (texts.empty()) return at::empty({0, embed});
  const int64_t context = model_.options.text.context_length;
  const int64_t total = static_cast<int64_t>(texts.size());
  constexpr int64_t kBatch = 256;  // bounds activation memory for long caption lists
  std::vector<at::Tensor> out;
  torch::NoGradGuard no_grad;
  for (int64_t begin = 0; begin < total; begin += kBatch) {
    const int64_t count = std::min(kBatch, total - begin);
    at::Tensor ids = at::zeros({count, context}, at::kLong);
    int64_t* row_ids = ids.data_ptr<int64_t>();
    for (int64_t i = 0; i < count; ++i) {
      const std::vector<int32_t> row = model_.tokenizer->encode(
          texts[static_cast<size_t>(begin + i)], static_cast<size_t>(context));
      for (size_t j = 0; j < row.size(); ++j)
        row_ids[i * context + static_cast<int64_t>(j)] = row[j];
    }
    ids = ids.to(model_.model->logit_scale.device());
    out.push_back(
        torch::nn::functional::normalize(model_.model->text->forward(ids).embedding,
                                         torch::nn::functional::NormalizeFuncOptions().dim(-1)));
  }
  return at::cat(out).to(at::kCPU);
}

at::Tensor Embedder::clips(const at::Tensor& video) {
  torch::NoGradGuard no_grad;
  // uint8 crosses to the model's device (4x less than float), normalised there.
  const at::Tensor x = normalize_video(video.to(model_.model->logit_scale.device()), options_.norm);
  return torch::nn::functional::normalize(model_.model->visual->forward(x).embedding,
                                          torch::nn::functional::NormalizeFuncOptions().dim(-1))
      .to(at::kCPU);
}

at::Tensor Embedder::image(const std::string& path) {
  const at::Tensor frames = resize_center_crop(read_media_frames(path, 1, options_.decode_threads),
                                               model_.options.vision.image_size);
  return clips(frames.unsqueeze(0));
}

at::Tensor Embedder::video(const std::string& path) {
  const at::Tensor frames =
      resize_center_crop(read_media_frames(path, options_.frames, options_.decode_threads),
                         model_.options.vision.image_size);
  return clips(frames.unsqueeze(0));
}

}  // namespace harvest::eval
