// Checks on input paths before they are opened: on Linux a directory opens as a stream that
// reads nothing, so without this a config or manifest path that is a directory "worked" as an
// empty file (`config check DIR` succeeded; training reported an empty dataset).
#pragma once

#include <filesystem>
#include <string>

#include "core/error.hpp"

namespace harvest {

// Throws `kind` naming `path` and `what` ("config file", "manifest") unless it is a regular
// file (or a link to one).
inline void require_regular_file(const std::string& path, ErrorKind kind, const std::string& what) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (status.type() == std::filesystem::file_type::regular) return;
  if (status.type() == std::filesystem::file_type::not_found || ec)
    fail(kind, path, ": no such ", what);
  if (status.type() == std::filesystem::file_type::directory)
    fail(kind, path, ": is a directory, expected a ", what, " file");
  fail(kind, path, ": not a regular file, expected a ", what);
}

}  // namespace harvest
