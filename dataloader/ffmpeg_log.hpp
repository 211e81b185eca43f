// FFmpeg prints decoder complaints straight to stderr; a corrupt file can emit thousands of lines.
// route_ffmpeg_logs() sends them into spdlog at debug level instead (the sample's BadVideo error
// already says what went wrong). FFmpeg's log callback is process-wide, so this installs once.
#pragma once

namespace harvest::data {

void route_ffmpeg_logs();

}  // namespace harvest::data
