// FFmpeg return-code wrapper (header-only: only targets that link libavutil include it).
#pragma once

extern "C" {
#include <libavutil/error.h>
}

#include <string>

#include "core/error.hpp"

namespace harvest {

inline std::string av_error_text(int rc) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(rc, buf, sizeof buf);
  return buf;
}

// check_av(rc, "avformat_open_input", path): throws Runtime naming the call, file and FFmpeg's reason.
inline int check_av(int rc, const char* call, const std::string& file) {
  if (rc < 0) fail(ErrorKind::Runtime, file, ": ", call, " failed: ", av_error_text(rc), " (", rc, ")");
  return rc;
}

}  // namespace harvest
