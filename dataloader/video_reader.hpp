// VideoReader: one open video file, its first real video stream, and frame lookup by
// presentation time. The frame for time t is the frame on screen at t: the last frame whose
// pts <= t (the first frame for t before it). Times are seconds from the stream's start.
#pragma once

#include <climits>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "core/time.hpp"
#include "dataloader/av_ptr.hpp"

namespace harvest::data {

struct ReaderOptions {
  int64_t max_resolution = 4096;  // width or height above this: BadReason::TooLarge
  double timeout_s = 30.0;        // deadline for open + every decode call of this reader
  int threads = 1;                // decoder threads
  double seek_threshold_s = 2.0;  // jump ahead by seeking when the next target is this far away
  bool early_drain = true;        // frames_at drains for a target instead of decoding past it
                                  // (off: only for benchmarks comparing the two)
};

struct VideoInfo {
  std::string path;
  std::string container;
  std::string codec;
  std::string pixel_format;
  int width = 0;  // coded frame size (before rotation)
  int height = 0;
  int rotation = 0;              // clockwise degrees to display upright: 0, 90, 180 or 270
  double duration = 0.0;         // seconds
  int64_t frame_count = 0;       // from metadata, or estimated
  double fps = 0.0;              // average frame rate, 0 when unknown
  bool from_timestamps = false;  // duration/count came from a packet scan, not metadata
  int display_width() const { return rotation % 180 ? height : width; }
  int display_height() const { return rotation % 180 ? width : height; }
};

class VideoReader {
 public:
  VideoReader(std::string path, ReaderOptions options);
  VideoReader(const VideoReader&) = delete;
  VideoReader& operator=(const VideoReader&) = delete;

  const VideoInfo& info() const { return info_; }

  // What the caller does after frames_at: More (next_frames follows) or Done (nothing, or
  // another frames_at at later times).
  enum class After { Done, More };

  // The frame displayed at each time; `times` ascending. Seeks to the keyframe before a far
  // target and decodes forward. Once the packet of a target's frame is in the decoder and the
  // next target is reached by a seek anyway (or there is none and `after` is Done), the decoder
  // is drained instead of fed the packets behind it: those frames would only be decoded to be
  // dropped. Throws BadVideo (ZeroFrames, Truncated, Timeout, DecodeError).
  std::vector<FramePtr> frames_at(const std::vector<double>& times, After after = After::Done);

  // Up to `n` frames from the current position in presentation order (short videos).
  std::vector<FramePtr> next_frames(size_t n);

  // Seconds from the stream start of a frame this reader returned.
  double time_of(const AVFrame& frame) const;

  // Frames the decoder has reconstructed so far (skipped and never-sent frames not counted).
  int64_t decoded_frames() const { return decoded_frames_; }
  // Packets handed to the decoder so far (decoded, or dropped by skip_frame).
  int64_t sent_packets() const { return sent_packets_; }

 private:
  static int interrupt(void* self);
  // AVFormatContext::io_open: opens the reader's own file and nothing else.
  static int open_only_own_file(AVFormatContext* s, AVIOContext** pb, const char* url, int flags,
                                AVDictionary** options);
  void open();
  void scan_timestamps();
  std::optional<FramePtr> decode_next();
  bool demux_one();
  bool needed(const AVPacket& packet);
  bool is_target(const AVPacket& packet);
  bool seek_wanted(int64_t target_pts, int64_t position) const;
  bool keyframe_ahead(int64_t target_pts, int64_t position) const;
  bool seek(int64_t target_pts);
  void reset_position();
  int64_t to_pts(double seconds) const;

  std::string path_;
  ReaderOptions options_;
  // FFmpeg's own io_open, which open_only_own_file hands the reader's file to.
  int (*default_io_open_)(AVFormatContext*, AVIOContext**, const char*, int, AVDictionary**) = nullptr;
  Deadline deadline_;
  VideoInfo info_;
  FormatPtr format_;
  CodecPtr codec_;
  PacketPtr packet_;
  int stream_index_ = -1;
  AVRational time_base_{1, 1};
  int64_t start_pts_ = 0;
  int64_t frame_step_ = 1;  // one frame duration in time_base_ units (timestamp repair)

  // Decode position.
  bool input_done_ = false;  // demuxer exhausted, decoder flushed
  bool at_start_ = true;     // decoding from the very first frame (no seek since opening)
  std::optional<int64_t> last_pts_;
  int decode_errors_ = 0;
  int64_t decoded_frames_ = 0;
  int64_t sent_packets_ = 0;
  std::deque<PacketPtr> queue_;      // demuxed packets of the stream not yet sent to the decoder
  bool demux_done_ = false;          // av_read_frame reported the end (or a read error)
  int64_t demux_ts_ = INT64_MIN;     // dts (else pts) of the newest demuxed packet
  int64_t target_ = INT64_MIN;       // pts being looked for; INT64_MIN: every frame is wanted
  // The target after target_ (nullopt: none), and whether draining after target_'s packet is
  // allowed when none follows; target_sent_: the packet of target_'s frame went to the decoder.
  std::optional<int64_t> next_target_;
  bool drain_when_last_ = false;
  bool target_sent_ = false;
  bool drained_early_ = false;       // input_done_ by an early drain: more frames need a seek
  bool drain_disabled_ = false;      // an early drain lost its target once: never again here
  FramePtr held_;                    // last frame with pts <= the current target
  FramePtr pending_;                 // first decoded frame after it
};

}  // namespace harvest::data
