// BadVideo: a sample that cannot be decoded, with the reason the loader counts it under.
// The loader skips such samples by rule (next sample of the shard) and reports the counts;
// everything else (bad options, our bugs) stays a plain Error.
#pragma once

#include <string>

#include "core/error.hpp"

namespace harvest::data {

enum class BadReason {
  Missing,        // no such file
  Empty,          // zero bytes
  Unreadable,     // container could not be opened/probed (corrupt or truncated header)
  NoVideoStream,  // audio-only, or only attached pictures
  TooLarge,       // width or height over data.max_resolution
  ZeroFrames,     // a video stream that yields no frame
  Truncated,      // frames stop well before the duration the container declares
  DecodeError,    // the decoder rejected the stream
  BadSegment,     // clip start/end outside the video
  Timeout,        // over the per-sample decode deadline
};
constexpr int kBadReasonCount = 10;

const char* to_string(BadReason reason);

class BadVideo : public Error {
 public:
  BadVideo(BadReason reason, const std::string& message)
      : Error(ErrorKind::Runtime, message), reason_(reason) {}
  BadReason reason() const { return reason_; }

 private:
  BadReason reason_;
};

template <class... Args>
[[noreturn]] void bad_video(BadReason reason, const Args&... args) {
  throw BadVideo(reason, cat(to_string(reason), ": ", args...));
}

}  // namespace harvest::data
