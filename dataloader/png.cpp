#include "dataloader/png.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "core/check_ffmpeg.hpp"
#include "dataloader/av_ptr.hpp"

namespace harvest::data {

std::vector<uint8_t> encode_png_rgb(const uint8_t* rgb, int width, int height) {
  const AVCodec* codec = avcodec_find_encoder(AV_CODEC_ID_PNG);
  HARVEST_REQUIRE(codec, Runtime, "this FFmpeg build has no png encoder");
  CodecPtr ctx(avcodec_alloc_context3(codec));
  HARVEST_REQUIRE(ctx, Runtime, "avcodec_alloc_context3(png): out of memory");
  ctx->width = width;
  ctx->height = height;
  ctx->pix_fmt = AV_PIX_FMT_RGB24;
  ctx->time_base = AVRational{1, 1};
  check_av(avcodec_open2(ctx.get(), codec, nullptr), "avcodec_open2(png)", "png");

  FramePtr frame = make_frame();
  frame->format = AV_PIX_FMT_RGB24;
  frame->width = width;
  frame->height = height;
  check_av(av_frame_get_buffer(frame.get(), 0), "av_frame_get_buffer", "png");
  for (int y = 0; y < height; ++y)
    std::memcpy(frame->data[0] + static_cast<size_t>(y) * frame->linesize[0],
                rgb + static_cast<size_t>(y) * width * 3, static_cast<size_t>(width) * 3);
  check_av(avcodec_send_frame(ctx.get(), frame.get()), "avcodec_send_frame(png)", "png");
  check_av(avcodec_send_frame(ctx.get(), nullptr), "avcodec_send_frame(png flush)", "png");
  std::vector<uint8_t> out;
  PacketPtr packet = make_packet();
  while (avcodec_receive_packet(ctx.get(), packet.get()) == 0) {
    out.insert(out.end(), packet->data, packet->data + packet->size);
    av_packet_unref(packet.get());
  }
  HARVEST_REQUIRE(!out.empty(), Runtime, "png encoder produced no data");
  return out;
}

void write_contact_sheet(const std::string& path, const uint8_t* frames, int64_t count, int height,
                         int width, int columns) {
  constexpr int kGap = 2;
  const int cols = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(columns, count)));
  const int rows = static_cast<int>((count + cols - 1) / cols);
  const int sheet_w = cols * width + (cols + 1) * kGap;
  const int sheet_h = rows * height + (rows + 1) * kGap;
  std::vector<uint8_t> sheet(static_cast<size_t>(sheet_w) * sheet_h * 3, 255);
  for (int64_t i = 0; i < count; ++i) {
    const int x0 = kGap + static_cast<int>(i % cols) * (width + kGap);
    const int y0 = kGap + static_cast<int>(i / cols) * (height + kGap);
    const uint8_t* src = frames + static_cast<size_t>(i) * width * height * 3;
    for (int y = 0; y < height; ++y)
      std::memcpy(&sheet[(static_cast<size_t>(y0 + y) * sheet_w + x0) * 3],
                  src + static_cast<size_t>(y) * width * 3, static_cast<size_t>(width) * 3);
  }
  const std::vector<uint8_t> png = encode_png_rgb(sheet.data(), sheet_w, sheet_h);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    HARVEST_REQUIRE(out, Runtime, tmp, ": cannot open for writing");
    out.write(reinterpret_cast<const char*>(png.data()), static_cast<std::streamsize>(png.size()));
    out.flush();
    HARVEST_REQUIRE(out, Runtime, tmp, ": write failed");
  }
  HARVEST_REQUIRE(std::rename(tmp.c_str(), path.c_str()) == 0, Runtime, path, ": rename from ", tmp,
                  " failed");
}

}  // namespace harvest::data
