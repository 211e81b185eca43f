// A checkpoint's content in host memory: typed records plus metadata. The worker fills one at a
// step boundary (the only blocking part of an async save); writers and readers speak only this.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoint/buffer_pool.hpp"
#include "checkpoint/copy_pool.hpp"
#include "checkpoint/dtype.hpp"
#include "checkpoint/host_buffer.hpp"

namespace harvest::checkpoint {

// Version of the file layout in docs/checkpoint-format.md; readers reject newer files.
constexpr int64_t kFormatVersion = 1;

// Root attributes of every checkpoint file.
struct CheckpointMeta {
  int64_t format_version = kFormatVersion;
  int64_t step = 0;
  int64_t epoch = 0;
  int64_t rank = 0;             // which part of the checkpoint this file is
  int64_t world_size = 1;       // how many parts the checkpoint has
  std::string harvest_version;  // empty: filled with this build's version by the writer
  std::string torch_version;    // passed in by the caller (the checkpoint library has no LibTorch)
  std::string created_utc;      // empty: filled with the write time (ISO 8601) by the writer
  std::string config_toml;      // the resolved config

  bool operator==(const CheckpointMeta& o) const;
};

// One dataset: `path` like "model/visual/conv1.weight" or "optimizer/exp_avg/..." ('/' separates
// groups), row-major bytes of `shape` elements of `dtype`. An empty shape is a scalar.
struct Record {
  std::string path;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  HostBuffer bytes;

  int64_t numel() const;
};

// Bytes `shape` x `dtype` needs; throws Usage naming `path` on negative dimensions or overflow.
std::size_t record_nbytes(const std::string& path, DType dtype, const std::vector<int64_t>& shape);

// Throws Usage naming the path when it cannot name an HDF5 dataset ("" or "a//b", "/a", "a/./b").
void check_record_path(const std::string& path);

class Snapshot {
 public:
  Snapshot() = default;
  // Draws record storage from `pool` and hands it back when destroyed
  // (CheckpointSaver::snapshot()).
  // Copies added with add_deferred() are shared out over `copier`'s threads.
  explicit Snapshot(std::shared_ptr<BufferPool> pool, std::shared_ptr<CopyPool> copier = nullptr)
      : pool_(std::move(pool)), copier_(std::move(copier)) {}
  ~Snapshot();
  Snapshot(Snapshot&&) noexcept = default;
  Snapshot& operator=(Snapshot&&) noexcept;
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;

  CheckpointMeta meta;

  // Adds a record and returns its uninitialised storage for the caller to fill (one copy from the
  // tensor, no intermediate). Throws Usage on a bad or duplicate path or a path that would be both
  // a group and a dataset ("model/a" and "model/a/b").
  std::byte* add(const std::string& path, DType dtype, const std::vector<int64_t>& shape);
  // Adds a record holding a copy of `src` (record_nbytes(...) bytes).
  void add_copy(const std::string& path, DType dtype, const std::vector<int64_t>& shape,
                const void* src);
  // Adds a record whose bytes are copied from `src` later, all together and in parallel, by
  // copy_pending() (CheckpointSaver::save() calls it before it returns or hands off). `src` must
  // stay valid and unchanged until then: the caller adds every tensor of a step boundary, then
  // saves, before it touches them again. One parallel pass is faster than one copy per record.
  void add_deferred(const std::string& path, DType dtype, const std::vector<int64_t>& shape,
                    const void* src);
  // Performs the copies add_deferred() queued; a no-op when none are queued.
  void copy_pending();
  bool has_pending_copies() const { return !pending_.empty(); }
  // Small opaque state (RNG state, sampler position as JSON): a 1-D u8 record.
  void add_blob(const std::string& path, std::string_view bytes);
  // Takes a record as is (the reader's output, for example).
  void add_record(Record record);

  const std::vector<Record>& records() const { return records_; }
  std::vector<Record>& records() { return records_; }
  const Record* find(const std::string& path) const;
  // The blob at `path` as a string; throws Runtime naming the path when absent or not u8.
  std::string blob(const std::string& path) const;
  std::size_t total_bytes() const;

 private:
  // Registers the path: throws Usage on a bad path, a duplicate, or a group/dataset clash.
  void claim_path(const std::string& path);
  void recycle();
  std::shared_ptr<BufferPool> pool_;
  std::shared_ptr<CopyPool> copier_;
  std::vector<CopyTask> pending_;
  std::vector<Record> records_;
  std::set<std::string> datasets_;
  std::set<std::string> groups_;
};

}  // namespace harvest::checkpoint
