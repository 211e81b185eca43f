#include "dataloader/video_reader.hpp"

extern "C" {
#include <libavutil/display.h>
#include <libavutil/pixdesc.h>
}

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>

#include "core/check_ffmpeg.hpp"
#include "dataloader/bad_video.hpp"
#include "dataloader/ffmpeg_log.hpp"

namespace harvest::data {

namespace {

// Corrupt streams make decoders complain per packet; past this many with no frame, give up.
constexpr int kMaxDecodeErrors = 64;
// Packets read ahead of the decoder to learn which frames a target can still use; past this the
// reader stops looking and decodes the packet in full.
constexpr size_t kLookaheadPackets = 64;
// A keyframe this many frames or fewer before the target is not worth a seek: with B-frames its
// index timestamp (decode time) can sit after the frame that is on screen at the target.
constexpr int64_t kSeekMarginFrames = 4;

int rotation_of(const AVStream& stream) {
  size_t size = 0;
  const uint8_t* matrix = av_stream_get_side_data(&stream, AV_PKT_DATA_DISPLAYMATRIX, &size);
  if (!matrix || size < 9 * sizeof(int32_t)) return 0;
  const double ccw = av_display_rotation_get(reinterpret_cast<const int32_t*>(matrix));
  if (std::isnan(ccw)) return 0;
  // The matrix stores the counter-clockwise rotation applied; showing upright undoes it.
  long cw = std::lround(-ccw / 90.0) * 90;
  cw %= 360;
  if (cw < 0) cw += 360;
  return static_cast<int>(cw);
}

double positive_rate(AVRational r) {
  return r.num > 0 && r.den > 0 ? av_q2d(r) : 0.0;
}

}  // namespace

FramePtr make_frame() {
  FramePtr frame(av_frame_alloc());
  if (!frame) fail(ErrorKind::Runtime, "av_frame_alloc: out of memory");
  return frame;
}

PacketPtr make_packet() {
  PacketPtr packet(av_packet_alloc());
  if (!packet) fail(ErrorKind::Runtime, "av_packet_alloc: out of memory");
  return packet;
}

FramePtr clone_frame(const AVFrame& frame) {
  FramePtr copy(av_frame_clone(&frame));
  if (!copy) fail(ErrorKind::Runtime, "av_frame_clone: out of memory");
  return copy;
}

const char* to_string(BadReason reason) {
  switch (reason) {
    case BadReason::Missing:
      return "missing";
    case BadReason::Empty:
      return "empty";
    case BadReason::Unreadable:
      return "unreadable";
    case BadReason::NoVideoStream:
      return "no_video_stream";
    case BadReason::TooLarge:
      return "too_large";
    case BadReason::ZeroFrames:
      return "zero_frames";
    case BadReason::Truncated:
      return "truncated";
    case BadReason::DecodeError:
      return "decode_error";
    case BadReason::BadSegment:
      return "bad_segment";
    case BadReason::Timeout:
      return "timeout";
  }
  return "unknown";
}

VideoReader::VideoReader(std::string path, ReaderOptions options)
    : path_(std::move(path)),
      options_(options),
      deadline_(Deadline::after_seconds(options.timeout_s)),
      packet_(make_packet()),
      drain_disabled_(!options.early_drain) {
  route_ffmpeg_logs();
  info_.path = path_;
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) {
    const int err = errno;
    bad_video(err == ENOENT ? BadReason::Missing : BadReason::Unreadable, path_, ": ",
              std::strerror(err));
  }
  if (st.st_size == 0) bad_video(BadReason::Empty, path_, ": file is empty (0 bytes)");
  open();
  if (info_.duration <= 0.0 || info_.frame_count <= 0) {
    scan_timestamps();
    open();  // rewind by reopening: works for every container, seekable or not
  }
}

int VideoReader::interrupt(void* self) {
  return static_cast<VideoReader*>(self)->deadline_.expired() ? 1 : 0;
}

// A video is the file it is. Demuxers such as HLS (.m3u8), concat and image sequences open
// further files named inside the input, so a crafted "video" could make a loader read any local
// file (or, with network protocols, fetch one). Every open FFmpeg makes goes through io_open:
// only the reader's own path passes, through the file protocol alone.
int VideoReader::open_only_own_file(AVFormatContext* s, AVIOContext** pb, const char* url, int flags,
                                    AVDictionary** options) {
  auto* self = static_cast<VideoReader*>(s->opaque);
  if (!url || self->path_ != url || (flags & AVIO_FLAG_WRITE)) return AVERROR(EPERM);
  return self->default_io_open_(s, pb, url, flags, options);
}

void VideoReader::open() {
  codec_.reset();
  format_.reset();
  AVFormatContext* raw = avformat_alloc_context();
  if (!raw) fail(ErrorKind::Runtime, path_, ": avformat_alloc_context: out of memory");
  raw->interrupt_callback.callback = &VideoReader::interrupt;
  raw->interrupt_callback.opaque = this;
  raw->opaque = this;
  default_io_open_ = raw->io_open;
  raw->io_open = &VideoReader::open_only_own_file;
  AVDictionary* input_options = nullptr;
  av_dict_set(&input_options, "protocol_whitelist", "file", 0);
  int rc = avformat_open_input(&raw, path_.c_str(), nullptr, &input_options);  // frees raw on failure
  av_dict_free(&input_options);
  if (rc < 0) {
    if (deadline_.expired())
      bad_video(BadReason::Timeout, path_, ": opening took over ", options_.timeout_s, " s");
    bad_video(BadReason::Unreadable, path_, ": avformat_open_input failed: ", av_error_text(rc));
  }
  format_.reset(raw);
  rc = avformat_find_stream_info(format_.get(), nullptr);
  if (rc < 0) {
    if (deadline_.expired())
      bad_video(BadReason::Timeout, path_, ": probing took over ", options_.timeout_s, " s");
    bad_video(BadReason::Unreadable, path_,
              ": avformat_find_stream_info failed: ", av_error_text(rc));
  }

  // First real video stream: cover art (attached pictures) is a one-frame "video" stream.
  stream_index_ = -1;
  const AVCodec* decoder = nullptr;
  for (unsigned i = 0; i < format_->nb_streams; ++i) {
    const AVStream* s = format_->streams[i];
    if (s->codecpar->codec_type != AVMEDIA_TYPE_VIDEO) continue;
    if (s->disposition & AV_DISPOSITION_ATTACHED_PIC) continue;
    decoder = avcodec_find_decoder(s->codecpar->codec_id);
    if (!decoder) continue;
    stream_index_ = static_cast<int>(i);
    break;
  }
  if (stream_index_ < 0)
    bad_video(BadReason::NoVideoStream, path_, ": no decodable video stream among ",
              format_->nb_streams, " stream(s)");
  AVStream* stream = format_->streams[stream_index_];
  // Only this stream's packets are needed: the demuxer drops the rest early.
  for (unsigned i = 0; i < format_->nb_streams; ++i)
    if (static_cast<int>(i) != stream_index_) format_->streams[i]->discard = AVDISCARD_ALL;

  const AVCodecParameters& par = *stream->codecpar;
  if (par.width <= 0 || par.height <= 0)
    bad_video(BadReason::Unreadable, path_, ": video stream has no frame size (", par.width, "x",
              par.height, ")");
  if (par.width > options_.max_resolution || par.height > options_.max_resolution)
    bad_video(BadReason::TooLarge, path_, ": ", par.width, "x", par.height,
              " exceeds data.max_resolution=", options_.max_resolution);

  codec_.reset(avcodec_alloc_context3(decoder));
  if (!codec_) fail(ErrorKind::Runtime, path_, ": avcodec_alloc_context3: out of memory");
  check_av(avcodec_parameters_to_context(codec_.get(), &par), "avcodec_parameters_to_context",
           path_);
  codec_->thread_count = options_.threads;
  codec_->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
  codec_->pkt_timebase = stream->time_base;
  rc = avcodec_open2(codec_.get(), decoder, nullptr);
  if (rc < 0)
    bad_video(BadReason::DecodeError, path_, ": avcodec_open2(", decoder->name,
              ") failed: ", av_error_text(rc));

  time_base_ = stream->time_base;
  start_pts_ = stream->start_time != AV_NOPTS_VALUE ? stream->start_time : 0;
  const double fps = positive_rate(stream->avg_frame_rate) > 0
                         ? positive_rate(stream->avg_frame_rate)
                         : positive_rate(stream->r_frame_rate);
  frame_step_ =
      std::max<int64_t>(1, std::llround(1.0 / ((fps > 0 ? fps : 25.0) * av_q2d(time_base_))));

  info_.container = format_->iformat->name;
  info_.codec = decoder->name;
  const char* pix = av_get_pix_fmt_name(static_cast<AVPixelFormat>(par.format));
  info_.pixel_format = pix ? pix : "unknown";
  info_.width = par.width;
  info_.height = par.height;
  info_.rotation = rotation_of(*stream);
  if (!info_.from_timestamps) {
    info_.fps = fps;
    if (stream->duration != AV_NOPTS_VALUE && stream->duration > 0)
      info_.duration = stream->duration * av_q2d(time_base_);
    else if (format_->duration != AV_NOPTS_VALUE && format_->duration > 0)
      info_.duration = static_cast<double>(format_->duration) / AV_TIME_BASE;
    info_.frame_count = stream->nb_frames > 0             ? stream->nb_frames
                        : (info_.duration > 0 && fps > 0) ? std::llround(info_.duration * fps)
                                                          : 0;
  }
  reset_position();
  at_start_ = true;
}

// Metadata without duration or frame count (raw streams, some webm/ts): read every packet of
// the stream once and take the count and the end of the last one.
void VideoReader::scan_timestamps() {
  int64_t count = 0;
  int64_t first = AV_NOPTS_VALUE, end = AV_NOPTS_VALUE;
  while (true) {
    if (deadline_.expired())
      bad_video(BadReason::Timeout, path_, ": timestamp scan took over ", options_.timeout_s, " s");
    const int rc = av_read_frame(format_.get(), packet_.get());
    if (rc < 0) break;
    if (packet_->stream_index == stream_index_) {
      ++count;
      const int64_t ts = packet_->pts != AV_NOPTS_VALUE ? packet_->pts : packet_->dts;
      if (ts != AV_NOPTS_VALUE) {
        if (first == AV_NOPTS_VALUE || ts < first) first = ts;
        const int64_t e = ts + std::max<int64_t>(packet_->duration, 0);
        if (end == AV_NOPTS_VALUE || e > end) end = e;
      }
    }
    av_packet_unref(packet_.get());
  }
  info_.from_timestamps = true;
  info_.frame_count = count;
  if (first != AV_NOPTS_VALUE && end > first) {
    info_.duration = (end - std::min(first, start_pts_)) * av_q2d(time_base_);
  } else if (info_.fps > 0) {
    info_.duration = count / info_.fps;
  } else {
    info_.duration = count / 25.0;  // no timing at all: FFmpeg's own default rate
  }
  if (info_.fps <= 0 && info_.duration > 0) info_.fps = count / info_.duration;
}

int64_t VideoReader::to_pts(double seconds) const {
  return start_pts_ + std::llround(seconds / av_q2d(time_base_));
}

double VideoReader::time_of(const AVFrame& frame) const {
  return (frame.pts - start_pts_) * av_q2d(time_base_);
}

void VideoReader::reset_position() {
  queue_.clear();
  demux_done_ = false;
  demux_ts_ = INT64_MIN;
  input_done_ = false;
  drained_early_ = false;
  target_sent_ = false;
  last_pts_.reset();
  held_.reset();
  pending_.reset();
}

// Reads the next packet of the stream into queue_; false at the end of the input.
bool VideoReader::demux_one() {
  while (!demux_done_) {
    PacketPtr packet = make_packet();
    const int rc = av_read_frame(format_.get(), packet.get());
    if (rc < 0) {
      if (deadline_.expired())
        bad_video(BadReason::Timeout, path_, ": reading took over ", options_.timeout_s, " s");
      demux_done_ = true;  // end of file, or a read error at a truncated tail
      break;
    }
    if (packet->stream_index != stream_index_) continue;
    const int64_t ts = packet->dts != AV_NOPTS_VALUE ? packet->dts : packet->pts;
    if (ts != AV_NOPTS_VALUE) demux_ts_ = std::max(demux_ts_, ts);
    queue_.push_back(std::move(packet));
    return true;
  }
  return false;
}

// Whether the frame of `packet` (the front of queue_) can be the one on screen at target_ or a
// later target. It cannot when its pts is before the target and another packet's pts lies
// between the two: that later frame replaces it. Looks ahead in decode order until such a packet
// turns up, a packet decodes after the target (its dts, and so every later pts, is past it), or
// the look-ahead limit; anything unknown counts as needed.
bool VideoReader::needed(const AVPacket& packet) {
  const int64_t p = packet.pts;
  if (target_ == INT64_MIN || p == AV_NOPTS_VALUE || p >= target_) return true;
  for (size_t i = 1;; ++i) {
    if (i == queue_.size()) {
      if (queue_.size() >= kLookaheadPackets || !demux_one()) return true;
    }
    const AVPacket& later = *queue_[i];
    if (later.pts != AV_NOPTS_VALUE && later.pts > p && later.pts <= target_) return false;
    if (later.dts != AV_NOPTS_VALUE && later.dts > target_) return true;
  }
}

// Whether `packet` (the front of queue_) holds the frame on screen at target_: its pts is at or
// before the target and no packet up to where every later pts is past the target (or the end of
// the input) has a pts in between. Unknown (no pts, look-ahead limit) is not proof.
bool VideoReader::is_target(const AVPacket& packet) {
  const int64_t p = packet.pts;
  if (target_ == INT64_MIN || p == AV_NOPTS_VALUE || p > target_) return false;
  for (size_t i = 1;; ++i) {
    if (i == queue_.size()) {
      if (queue_.size() >= kLookaheadPackets) return false;
      if (!demux_one()) return demux_done_;
    }
    const AVPacket& later = *queue_[i];
    if (later.pts == AV_NOPTS_VALUE) return false;
    if (later.pts > p && later.pts <= target_) return false;
    if (later.dts != AV_NOPTS_VALUE && later.dts > target_) return true;
  }
}

// Whether the frame for `target_pts` is better reached by a seek than by decoding on from
// `position`: it is far, or a keyframe lies in between.
bool VideoReader::seek_wanted(int64_t target_pts, int64_t position) const {
  const int64_t threshold = std::llround(options_.seek_threshold_s / av_q2d(time_base_));
  return target_pts - position > threshold || keyframe_ahead(target_pts, position);
}

// Whether the index knows a keyframe after everything demuxed so far (and after `position`, the
// decode position) and, by a margin, before `target_pts`: seeking there skips decoding the frames
// in between, which no target needs.
bool VideoReader::keyframe_ahead(int64_t target_pts, int64_t position) const {
  AVStream* stream = format_->streams[stream_index_];
  const AVIndexEntry* entry = avformat_index_get_entry_from_timestamp(
      stream, target_pts - kSeekMarginFrames * frame_step_, AVSEEK_FLAG_BACKWARD);
  if (!entry || !(entry->flags & AVINDEX_KEYFRAME)) return false;
  return entry->timestamp > std::max(demux_ts_, position);
}

// The next frame in presentation order, its pts repaired: missing timestamps continue from the
// previous frame, and pts never go backwards (frame->pts holds the repaired value).
std::optional<FramePtr> VideoReader::decode_next() {
  FramePtr frame = make_frame();
  while (true) {
    if (deadline_.expired())
      bad_video(BadReason::Timeout, path_, ": decoding took over ", options_.timeout_s, " s");
    int rc = avcodec_receive_frame(codec_.get(), frame.get());
    if (rc == 0) {
      ++decoded_frames_;
      int64_t pts = frame->best_effort_timestamp;
      if (pts == AV_NOPTS_VALUE) pts = last_pts_ ? *last_pts_ + frame_step_ : start_pts_;
      if (last_pts_ && pts <= *last_pts_) pts = *last_pts_ + 1;
      frame->pts = pts;
      last_pts_ = pts;
      if (frame->pkt_duration > 0) frame_step_ = frame->pkt_duration;
      return frame;
    }
    if (rc == AVERROR_EOF) return std::nullopt;
    if (rc != AVERROR(EAGAIN))
      bad_video(BadReason::DecodeError, path_,
                ": avcodec_receive_frame failed: ", av_error_text(rc));
    if (input_done_) return std::nullopt;  // flushed decoder that still asks for input

    // The target's packet is in: when what comes next is reached by a seek anyway (or nothing
    // comes next), drain the decoder for it rather than decode the packets behind it.
    if (target_sent_ && !drain_disabled_ &&
        (next_target_ ? seek_wanted(*next_target_, target_) : drain_when_last_)) {
      input_done_ = true;
      drained_early_ = true;
      avcodec_send_packet(codec_.get(), nullptr);
      continue;
    }
    if (queue_.empty() && !demux_one()) {
      // End of the input: drain what the decoder holds.
      input_done_ = true;
      avcodec_send_packet(codec_.get(), nullptr);
      continue;
    }
    // A frame no target can use: let the decoder drop it when nothing references it (about half
    // of a B-frame stream) instead of reconstructing it. Reference frames decode regardless.
    codec_->skip_frame = needed(*queue_.front()) ? AVDISCARD_DEFAULT : AVDISCARD_NONREF;
    if (!target_sent_ && is_target(*queue_.front())) target_sent_ = true;
    PacketPtr packet = std::move(queue_.front());
    queue_.pop_front();
    rc = avcodec_send_packet(codec_.get(), packet.get());
    ++sent_packets_;
    if (rc < 0 && rc != AVERROR(EAGAIN) && ++decode_errors_ > kMaxDecodeErrors)
      bad_video(BadReason::DecodeError, path_, ": ", decode_errors_, " packets rejected by the ",
                info_.codec, " decoder, last: ", av_error_text(rc));
  }
}

bool VideoReader::seek(int64_t target_pts) {
  if (av_seek_frame(format_.get(), stream_index_, target_pts, AVSEEK_FLAG_BACKWARD) < 0)
    return false;
  avcodec_flush_buffers(codec_.get());
  reset_position();
  at_start_ = false;
  return true;
}

std::vector<FramePtr> VideoReader::frames_at(const std::vector<double>& times, After after) {
  std::vector<FramePtr> out;
  out.reserve(times.size());
  const int64_t threshold = std::llround(options_.seek_threshold_s / av_q2d(time_base_));
  drain_when_last_ = after == After::Done;
  for (size_t k = 0; k < times.size(); ++k) {
    HARVEST_REQUIRE(k == 0 || times[k] >= times[k - 1], Usage, path_,
                    ": frames_at needs ascending times, got ", times[k - 1], " then ", times[k]);
    const int64_t target = to_pts(times[k]);
    const int64_t position = pending_ ? pending_->pts : held_ ? held_->pts : start_pts_;
    // Far ahead of what is decoded, or a keyframe in between (and not already at the end):
    // jump to the keyframe before the target. After an early drain a seek is the only way on,
    // even when the drain put out a frame past this target: packets it was not fed may hold
    // frames shown before that one.
    if (drained_early_) {
      if (!seek(target)) {
        drain_disabled_ = true;  // no seeking here: decode from the start, and plainly
        open();
      }
    } else if (!input_done_ && (!pending_ || pending_->pts <= target) &&
               seek_wanted(target, position)) {
      seek(target);
    }
    target_ = target;
    target_sent_ = false;
    next_target_.reset();
    if (k + 1 < times.size()) next_target_ = to_pts(times[k + 1]);
    int retreats = 0;
    while (true) {
      // Consume frames until the next one is past the target.
      while (true) {
        if (!pending_) {
          auto next = decode_next();
          if (!next) break;
          pending_ = std::move(*next);
        }
        if (pending_->pts > target) break;
        held_ = std::move(pending_);
      }
      if (held_) break;
      if (drained_early_) {
        // The target's frame did not come out of the drain (a corrupt packet): decode this
        // reader the plain way from here on.
        drain_disabled_ = true;
        if (!seek(target)) open();
        continue;
      }
      if (!pending_) {
        if (at_start_)
          bad_video(BadReason::ZeroFrames, path_, ": the video stream decodes to no frame");
        // A seek past the last decodable frame: go back to the beginning.
        if (!seek(start_pts_)) open();
        at_start_ = true;
        continue;
      }
      if (at_start_) break;  // target before the first frame: that first frame is on screen
      // The seek landed after the target (inexact index): step back further, then restart.
      ++retreats;
      const int64_t back = target - (int64_t{1} << retreats) * threshold - 1;
      if (retreats > 4 || back <= start_pts_ || !seek(back)) {
        if (!seek(start_pts_)) open();
        at_start_ = true;
      }
    }
    const AVFrame& shown = held_ ? *held_ : *pending_;
    if (input_done_ && !drained_early_ && !pending_ && info_.duration > 0) {
      // Hit the end of the data before the target: acceptable for the last frame's own span,
      // but frames stopping far before the declared duration mean a truncated file.
      const double last = time_of(shown);
      const double tolerance =
          std::max({0.5, 4.0 / (info_.fps > 0 ? info_.fps : 25.0), 0.15 * info_.duration});
      if (times[k] - last > tolerance && times[k] < info_.duration)
        bad_video(BadReason::Truncated, path_, ": frames end at ", last,
                  " s but the container declares ", info_.duration, " s");
    }
    out.push_back(clone_frame(shown));
  }
  return out;
}

std::vector<FramePtr> VideoReader::next_frames(size_t n) {
  HARVEST_REQUIRE(!drained_early_, Internal, path_,
                  ": next_frames after frames_at(..., After::Done); pass After::More");
  target_ = INT64_MIN;  // every frame is wanted
  next_target_.reset();
  std::vector<FramePtr> out;
  if (held_) out.push_back(std::move(held_));
  if (pending_ && out.size() < n) out.push_back(std::move(pending_));
  while (out.size() < n) {
    auto next = decode_next();
    if (!next) break;
    out.push_back(std::move(*next));
  }
  held_.reset();
  pending_.reset();
  if (out.empty())
    bad_video(BadReason::ZeroFrames, path_, ": the video stream decodes to no frame");
  return out;
}

}  // namespace harvest::data
