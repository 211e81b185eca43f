#include "dataloader/frame_scaler.hpp"

extern "C" {
#include <libavutil/pixdesc.h>
}

#include <algorithm>
#include <cstring>

#include "core/check_ffmpeg.hpp"

namespace harvest::data {

namespace {

// Display rectangle -> the coded-frame rectangle it shows (see VideoInfo::rotation).
CropRect to_source(CropRect d, int rotation, int width, int height) {
  switch (rotation) {
    case 90:
      return {d.y, height - d.x - d.w, d.h, d.w};
    case 180:
      return {width - d.x - d.w, height - d.y - d.h, d.w, d.h};
    case 270:
      return {width - d.y - d.h, d.x, d.h, d.w};
    default:
      return d;
  }
}

AVPixelFormat without_deprecated_range(AVPixelFormat f) {
  switch (f) {
    case AV_PIX_FMT_YUVJ420P:
      return AV_PIX_FMT_YUV420P;
    case AV_PIX_FMT_YUVJ422P:
      return AV_PIX_FMT_YUV422P;
    case AV_PIX_FMT_YUVJ444P:
      return AV_PIX_FMT_YUV444P;
    case AV_PIX_FMT_YUVJ440P:
      return AV_PIX_FMT_YUV440P;
    case AV_PIX_FMT_YUVJ411P:
      return AV_PIX_FMT_YUV411P;
    default:
      return f;
  }
}

bool is_full_range(const AVFrame& frame) {
  const auto f = static_cast<AVPixelFormat>(frame.format);
  return frame.color_range == AVCOL_RANGE_JPEG || f == AV_PIX_FMT_YUVJ420P ||
         f == AV_PIX_FMT_YUVJ422P || f == AV_PIX_FMT_YUVJ444P || f == AV_PIX_FMT_YUVJ440P ||
         f == AV_PIX_FMT_YUVJ411P;
}

}  // namespace

SwsContext* FrameScaler::context_for(int src_w, int src_h, AVPixelFormat src_format, int dst_w,
                                     int dst_h, int matrix, bool full_range) {
  const int key[7] = {
      src_w, src_h, static_cast<int>(src_format), dst_w, dst_h, matrix, full_range ? 1 : 0};
  if (sws_ && std::equal(key, key + 7, key_)) return sws_.get();
  sws_.reset(sws_getContext(src_w, src_h, src_format, dst_w, dst_h, AV_PIX_FMT_RGB24,
                            SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, nullptr, nullptr,
                            nullptr));
  std::copy(key, key + 7, key_);
  if (sws_) {
    // Colour matrix and range from the frame (BT.601 when unspecified), full-range RGB out.
    sws_setColorspaceDetails(sws_.get(), sws_getCoefficients(matrix), full_range ? 1 : 0,
                             sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
  }
  return sws_.get();
}

void FrameScaler::convert(const AVFrame& frame, CropRect crop, int rotation, bool flip, int out_w,
                          int out_h, uint8_t* dst, const std::string& path) {
  const bool sideways = rotation == 90 || rotation == 270;
  const CropRect src = to_source(crop, rotation, frame.width, frame.height);
  HARVEST_ASSERT(src.x >= 0 && src.y >= 0 && src.w > 0 && src.h > 0 &&
                     src.x + src.w <= frame.width && src.y + src.h <= frame.height,
                 path, ": crop ", src.x, ",", src.y, " ", src.w, "x", src.h, " outside ",
                 frame.width, "x", frame.height);

  // Crop by moving plane pointers (FFmpeg's own cropping handles every planar/packed layout).
  FramePtr view = clone_frame(frame);
  FramePtr converted;
  const AVPixFmtDescriptor* desc = av_pix_fmt_desc_get(static_cast<AVPixelFormat>(frame.format));
  HARVEST_REQUIRE(desc && !(desc->flags & AV_PIX_FMT_FLAG_HWACCEL), Runtime, path,
                  ": unsupported pixel format ", frame.format);
  if (desc->flags & AV_PIX_FMT_FLAG_BITSTREAM) {
    // 1-bit formats can't be cropped by pointer: expand to gray first (rare: old codecs only).
    converted = make_frame();
    converted->format = AV_PIX_FMT_GRAY8;
    converted->width = frame.width;
    converted->height = frame.height;
    check_av(av_frame_get_buffer(converted.get(), 0), "av_frame_get_buffer", path);
    SwsPtr expand(sws_getContext(
        frame.width, frame.height, static_cast<AVPixelFormat>(frame.format), frame.width,
        frame.height, AV_PIX_FMT_GRAY8, SWS_POINT, nullptr, nullptr, nullptr));
    HARVEST_REQUIRE(expand, Runtime, path, ": swscale cannot convert pixel format ", desc->name);
    sws_scale(expand.get(), frame.data, frame.linesize, 0, frame.height, converted->data,
              converted->linesize);
    view = std::move(converted);
  }
  view->crop_left = static_cast<size_t>(src.x);
  view->crop_top = static_cast<size_t>(src.y);
  view->crop_right = static_cast<size_t>(frame.width - src.x - src.w);
  view->crop_bottom = static_cast<size_t>(frame.height - src.y - src.h);
  check_av(av_frame_apply_cropping(view.get(), AV_FRAME_CROP_UNALIGNED), "av_frame_apply_cropping",
           path);

  const int scaled_w = sideways ? out_h : out_w;
  const int scaled_h = sideways ? out_w : out_h;
  const auto src_format = without_deprecated_range(static_cast<AVPixelFormat>(view->format));
  const int matrix = view->colorspace == AVCOL_SPC_UNSPECIFIED ? SWS_CS_DEFAULT
                                                               : static_cast<int>(view->colorspace);
  SwsContext* sws = context_for(view->width, view->height, src_format, scaled_w, scaled_h, matrix,
                                is_full_range(frame));
  HARVEST_REQUIRE(sws, Runtime, path, ": swscale cannot convert ", av_get_pix_fmt_name(src_format),
                  " ", view->width, "x", view->height, " to rgb24 ", scaled_w, "x", scaled_h);

  // Rows padded for swscale's SIMD stores; the copy below packs them.
  const int stride = (scaled_w * 3 + 63) / 64 * 64;
  scratch_.resize(static_cast<size_t>(stride) * scaled_h + 64);
  uint8_t* planes[4] = {scratch_.data(), nullptr, nullptr, nullptr};
  int strides[4] = {stride, 0, 0, 0};
  sws_scale(sws, view->data, view->linesize, 0, view->height, planes, strides);

  if (rotation == 0 && !flip) {
    for (int y = 0; y < out_h; ++y)
      std::memcpy(dst + static_cast<size_t>(y) * out_w * 3,
                  scratch_.data() + static_cast<size_t>(y) * stride,
                  static_cast<size_t>(out_w) * 3);
    return;
  }
  for (int yd = 0; yd < out_h; ++yd) {
    uint8_t* row = dst + static_cast<size_t>(yd) * out_w * 3;
    for (int xo = 0; xo < out_w; ++xo) {
      const int xd = flip ? out_w - 1 - xo : xo;
      int xs = xd, ys = yd;
      if (rotation == 90) {
        xs = yd;
        ys = scaled_h - 1 - xd;
      } else if (rotation == 180) {
        xs = scaled_w - 1 - xd;
        ys = scaled_h - 1 - yd;
      } else if (rotation == 270) {
        xs = scaled_w - 1 - yd;
        ys = xd;
      }
      const uint8_t* px =
          scratch_.data() + static_cast<size_t>(ys) * stride + static_cast<size_t>(xs) * 3;
      row[xo * 3 + 0] = px[0];
      row[xo * 3 + 1] = px[1];
      row[xo * 3 + 2] = px[2];
    }
  }
}

}  // namespace harvest::data
