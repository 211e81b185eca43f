// Reads a checkpoint file: metadata, the list of records, and records by name, each verified
// against its stored checksum.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "checkpoint/snapshot.hpp"

namespace harvest::checkpoint {

struct RecordInfo {
  std::string path;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::size_t nbytes = 0;               // logical bytes (what read() returns)
  std::size_t stored_bytes = 0;         // bytes on disk (smaller when compressed)
  uint64_t checksum = 0;                // XXH3-64 of the logical bytes
  std::string layout;                   // "contiguous", "chunked+shuffle+gzip", "compact"
  std::optional<uint64_t> file_offset;  // where a contiguous dataset's bytes start in the file
};

class CheckpointReader {
 public:
  // Opens the file and reads its metadata and record list. Throws Runtime naming the file when it
  // is missing, not HDF5, from a newer format, or truncated (naming the datasets that were cut).
  explicit CheckpointReader(const std::filesystem::path& file);
  ~CheckpointReader();
  CheckpointReader(const CheckpointReader&) = delete;
  CheckpointReader& operator=(const CheckpointReader&) = delete;

  const std::filesystem::path& file() const { return file_; }
  const CheckpointMeta& meta() const { return meta_; }
  // Records sorted by path.
  const std::vector<RecordInfo>& records() const { return records_; }
  const RecordInfo* find(const std::string& path) const;

  // Reads one record and checks its checksum. Throws Runtime naming the file and the dataset on a
  // missing record, a read error or a checksum mismatch.
  HostBuffer read(const std::string& path) const;
  // Same, into caller memory (e.g. a tensor's storage) of exactly info.nbytes bytes.
  void read_into(const std::string& path, void* dst, std::size_t nbytes) const;
  // Every record, verified, with the file's metadata.
  Snapshot read_all() const;
  // Reads every record; returns one line per problem (empty: the file is intact).
  std::vector<std::string> verify() const;

 private:
  std::filesystem::path file_;
  int64_t file_id_ = -1;
  CheckpointMeta meta_;
  std::vector<RecordInfo> records_;
};

// Throws unless `file` opens and every record matches its checksum; the message lists the problems.
void verify_checkpoint_file(const std::filesystem::path& file);

}  // namespace harvest::checkpoint
