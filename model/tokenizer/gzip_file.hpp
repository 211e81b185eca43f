// Whole-file I/O through zlib: reads gzip or plain files alike (zlib passes plain data through),
// writes gzip atomically (temporary file + rename: a reader never sees a partial vocabulary).
#pragma once

#include <string>

namespace harvest::tokenizer {

// Throws Runtime naming `path` when it is missing, unreadable or corrupt gzip.
std::string read_maybe_gzip(const std::string& path);

// Deterministic bytes: no timestamp or file name in the gzip header.
void write_gzip_atomic(const std::string& path, const std::string& content);

}  // namespace harvest::tokenizer
