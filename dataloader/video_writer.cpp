#include "dataloader/video_writer.hpp"

extern "C" {
#include <libavutil/opt.h>
}

#include <cstdio>
#include <cstring>
#include <sstream>

#include "core/check_ffmpeg.hpp"
#include "dataloader/ffmpeg_log.hpp"

namespace harvest::data {

void VideoWriter::OutputCloser::operator()(AVFormatContext* ctx) const {
  if (ctx->pb) avio_closep(&ctx->pb);
  avformat_free_context(ctx);
}

VideoWriter::VideoWriter(std::string path, VideoWriterOptions options)
    : path_(std::move(path)),
      options_(std::move(options)),
      frame_(make_frame()),
      packet_(make_packet()) {
  route_ffmpeg_logs();
  const auto dot = path_.rfind('.');
  const std::string ext = dot == std::string::npos ? "" : path_.substr(dot);
  tmp_ = path_ + ".part" + ext;  // keeps the extension: the muxer is guessed from it
  AVFormatContext* raw = nullptr;
  check_av(avformat_alloc_output_context2(&raw, nullptr, nullptr, path_.c_str()),
           "avformat_alloc_output_context2", path_);
  format_.reset(raw);
  format_->flags |= AVFMT_FLAG_BITEXACT;  // no library version strings: same bytes across builds

  const AVCodec* codec = nullptr;
  std::istringstream names(options_.encoders);
  for (std::string name; std::getline(names, name, ',');) {
    codec = avcodec_find_encoder_by_name(name.c_str());
    if (codec) break;
  }
  HARVEST_REQUIRE(codec, Runtime, path_, ": none of the encoders ", options_.encoders,
                  " is in this FFmpeg");
  encoder_ = codec->name;

  codec_.reset(avcodec_alloc_context3(codec));
  HARVEST_REQUIRE(codec_, Runtime, path_, ": avcodec_alloc_context3: out of memory");
  codec_->width = options_.width;
  codec_->height = options_.height;
  codec_->pix_fmt = AV_PIX_FMT_YUV420P;
  codec_->time_base = AVRational{1, options_.fps};
  codec_->framerate = AVRational{options_.fps, 1};
  codec_->gop_size = options_.gop > 0 ? options_.gop : options_.fps;
  codec_->thread_count = 1;  // deterministic output
  codec_->flags |= AV_CODEC_FLAG_BITEXACT;
  if (format_->oformat->flags & AVFMT_GLOBALHEADER) codec_->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  const std::string crf = std::to_string(options_.crf);
  if (encoder_ == "libx264") {
    av_opt_set(codec_->priv_data, "preset", "veryfast", 0);
    av_opt_set(codec_->priv_data, "crf", crf.c_str(), 0);
  } else if (encoder_ == "libvpx-vp9" || encoder_ == "libvpx") {
    av_opt_set(codec_->priv_data, "crf", crf.c_str(), 0);
    av_opt_set(codec_->priv_data, "deadline", "realtime", 0);
    av_opt_set(codec_->priv_data, "cpu-used", "8", 0);
    codec_->bit_rate = 0;
  } else {
    codec_->flags |= AV_CODEC_FLAG_QSCALE;
    codec_->global_quality = FF_QP2LAMBDA * 3;
  }
  check_av(avcodec_open2(codec_.get(), codec, nullptr), "avcodec_open2", path_);

  stream_ = avformat_new_stream(format_.get(), nullptr);
  HARVEST_REQUIRE(stream_, Runtime, path_, ": avformat_new_stream failed");
  stream_->time_base = codec_->time_base;
  check_av(avcodec_parameters_from_context(stream_->codecpar, codec_.get()),
           "avcodec_parameters_from_context", path_);
  check_av(avio_open(&format_->pb, tmp_.c_str(), AVIO_FLAG_WRITE), "avio_open", tmp_);
  check_av(avformat_write_header(format_.get(), nullptr), "avformat_write_header", path_);

  frame_->format = AV_PIX_FMT_YUV420P;
  frame_->width = options_.width;
  frame_->height = options_.height;
  check_av(av_frame_get_buffer(frame_.get(), 0), "av_frame_get_buffer", path_);
  rgb_ = make_frame();
  rgb_->format = AV_PIX_FMT_RGB24;
  rgb_->width = options_.width;
  rgb_->height = options_.height;
  check_av(av_frame_get_buffer(rgb_.get(), 0), "av_frame_get_buffer", path_);
  for (int i = 0; i < AV_NUM_DATA_POINTERS && rgb_->buf[i]; ++i)
    std::memset(rgb_->buf[i]->data, 0, rgb_->buf[i]->size);
  sws_.reset(sws_getContext(options_.width, options_.height, AV_PIX_FMT_RGB24, options_.width,
                            options_.height, AV_PIX_FMT_YUV420P,
                            SWS_BICUBIC | SWS_ACCURATE_RND | SWS_BITEXACT, nullptr, nullptr,
                            nullptr));
  HARVEST_REQUIRE(sws_, Runtime, path_, ": swscale rgb24 -> yuv420p unavailable");
}

VideoWriter::~VideoWriter() {
  if (!closed_) std::remove(tmp_.c_str());  // abandoned: leave nothing behind
}

void VideoWriter::write(const uint8_t* rgb) {
  check_av(av_frame_make_writable(frame_.get()), "av_frame_make_writable", path_);
  // swscale's SIMD reads a little past each row: give it padded rows whose padding is zeroed
  // once, or bytes beyond the caller's buffer leak into the encoder (non-deterministic output).
  const size_t row = static_cast<size_t>(options_.width) * 3;
  for (int y = 0; y < options_.height; ++y)
    std::memcpy(rgb_->data[0] + static_cast<size_t>(y) * rgb_->linesize[0], rgb + y * row, row);
  sws_scale(sws_.get(), rgb_->data, rgb_->linesize, 0, options_.height, frame_->data,
            frame_->linesize);
  frame_->pts = next_pts_++;
  check_av(avcodec_send_frame(codec_.get(), frame_.get()), "avcodec_send_frame", path_);
  drain();
}

void VideoWriter::drain() {
  while (true) {
    const int rc = avcodec_receive_packet(codec_.get(), packet_.get());
    if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return;
    check_av(rc, "avcodec_receive_packet", path_);
    if (packet_->duration <= 0)
      packet_->duration = 1;  // one frame: lets the muxer record the last frame's span
    av_packet_rescale_ts(packet_.get(), codec_->time_base, stream_->time_base);
    packet_->stream_index = stream_->index;
    check_av(av_interleaved_write_frame(format_.get(), packet_.get()), "av_interleaved_write_frame",
             path_);
  }
}

void VideoWriter::close() {
  if (closed_) return;
  check_av(avcodec_send_frame(codec_.get(), nullptr), "avcodec_send_frame(flush)", path_);
  drain();
  check_av(av_write_trailer(format_.get()), "av_write_trailer", path_);
  check_av(avio_closep(&format_->pb), "avio_closep", tmp_);
  HARVEST_REQUIRE(std::rename(tmp_.c_str(), path_.c_str()) == 0, Runtime, path_, ": rename from ",
                  tmp_, " failed");
  closed_ = true;
}

}  // namespace harvest::data
