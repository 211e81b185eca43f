// The durability steps of the commit protocol: fsync a file, fsync a folder (so a rename or
// unlink in it survives a crash), and replace a small file atomically.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace harvest::checkpoint {

// Opens `path` and fsyncs it; throws Runtime naming the path.
void fsync_file(const std::filesystem::path& path);

// fsyncs the folder itself, making renames/creations/removals of its entries durable.
void fsync_dir(const std::filesystem::path& dir);

// rename(from, to) then fsync of to's folder.
void rename_durably(const std::filesystem::path& from, const std::filesystem::path& to);

// Writes `text` to <path>.tmp, fsyncs it, renames it over `path`, fsyncs the folder: readers see
// the old or the new content, never a mix, even after a crash.
void write_file_atomically(const std::filesystem::path& path, const std::string& text);

// The whole file, or nullopt when it does not exist; throws Runtime on other errors.
std::optional<std::string> read_small_file(const std::filesystem::path& path);

}  // namespace harvest::checkpoint
