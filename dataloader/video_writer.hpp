// VideoWriter: RGB24 frames -> an encoded video file through libavformat/libavcodec (synthetic
// data, test fixtures). Written under a temporary name and renamed on close(): a crash never
// leaves a half-written file under the final name.
#pragma once

#include <cstdint>
#include <string>

#include "dataloader/av_ptr.hpp"

namespace harvest::data {

struct VideoWriterOptions {
  int width = 64;
  int height = 64;
  int fps = 8;
  // Encoder names in order of preference; the first one this FFmpeg has is used.
  std::string encoders = "libx264,mpeg4";
  int crf = 18;  // libx264/libvpx quality; mpeg4 uses a fixed quantiser instead
  int gop = 0;   // frames from one keyframe to the next; 0: one a second (fps)
};

class VideoWriter {
 public:
  // The container comes from the file extension (mp4, mkv, webm, avi ...).
  VideoWriter(std::string path, VideoWriterOptions options);
  ~VideoWriter();
  VideoWriter(const VideoWriter&) = delete;
  VideoWriter& operator=(const VideoWriter&) = delete;

  void write(const uint8_t* rgb);  // width*height*3 bytes, rows packed
  void close();                    // flush, trailer, rename into place
  const std::string& encoder() const { return encoder_; }

 private:
  void drain();
  struct OutputCloser {
    void operator()(AVFormatContext* ctx) const;
  };
  std::string path_;
  std::string tmp_;
  VideoWriterOptions options_;
  std::string encoder_;
  std::unique_ptr<AVFormatContext, OutputCloser> format_;
  CodecPtr codec_;
  AVStream* stream_ = nullptr;  // owned by format_
  FramePtr frame_;
  FramePtr rgb_;  // padded copy of the caller's picture
  PacketPtr packet_;
  SwsPtr sws_;
  int64_t next_pts_ = 0;
  bool closed_ = false;
};

}  // namespace harvest::data
