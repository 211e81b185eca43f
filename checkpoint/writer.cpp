#include "checkpoint/writer.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <memory>
#include <optional>
#include <system_error>
#include <utility>

#include "checkpoint/checksum.hpp"
#include "checkpoint/durable_file.hpp"
#include "checkpoint/h5_util.hpp"
#include "core/check_hdf5.hpp"
#include "core/check_sys.hpp"
#include "core/version.hpp"

namespace harvest::checkpoint {

namespace {

// Closes the descriptor on every path out; close_checked() reports a deferred write error.
class FileFd {
 public:
  explicit FileFd(const std::string& path)
      : fd_(check_sys(::open(path.c_str(), O_WRONLY | O_CLOEXEC), "open", path)), path_(path) {}
  ~FileFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileFd(const FileFd&) = delete;
  FileFd& operator=(const FileFd&) = delete;
  int get() const { return fd_; }
  void close_checked() {
    const int fd = std::exchange(fd_, -1);
    check_sys(::close(fd), "close", path_);
  }

 private:
  int fd_;
  std::string path_;
};

// Writes record data straight to the file at the offsets HDF5 allocated for it, hashing each
// piece just before it is written (while it is in cache: one pass over memory, not two), and
// asks the kernel to start writeback every kWritebackBytes, so that the disk works while later
// tensors are still being copied into the page cache and the final fsync has little left to do.
class DirectDataWriter {
 public:
  static constexpr std::size_t kPieceBytes = std::size_t{1} << 20;
  static constexpr std::size_t kWritebackBytes = std::size_t{16} << 20;

  DirectDataWriter(int fd, std::string file) : fd_(fd), file_(std::move(file)) {}

  // Writes `r` at `offset` and returns its XXH3-64.
  uint64_t write(const Record& r, uint64_t offset) {
    XXH3_state_t* state = XXH3_createState();
    HARVEST_REQUIRE(state != nullptr, Runtime, file_, ": out of memory for a checksum state");
    std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> owned(state, XXH3_freeState);
    XXH3_64bits_reset(state);
    const std::byte* data = r.bytes.data();
    const std::size_t size = r.bytes.size();
    for (std::size_t done = 0; done < size;) {
      const std::size_t n = std::min(kPieceBytes, size - done);
      XXH3_64bits_update(state, data + done, n);
      pwrite_all(data + done, n, offset + done, r.path);
      done += n;
      start_writeback(offset + done);
    }
    return XXH3_64bits_digest(state);
  }

 private:
  void pwrite_all(const std::byte* data, std::size_t n, uint64_t offset, const std::string& path) {
    while (n > 0) {
      const ssize_t w = ::pwrite(fd_, data, n, static_cast<off_t>(offset));
      if (w < 0 && errno == EINTR) continue;
      check_sys(w, "pwrite", file_ + ": dataset '" + path + "'");
      HARVEST_REQUIRE(w > 0, Runtime, file_, ": dataset '", path, "': pwrite wrote nothing");
      data += w;
      n -= static_cast<std::size_t>(w);
      offset += static_cast<uint64_t>(w);
    }
  }

  // Non-blocking: queues what was written since the last call for writeback once that is at
  // least kWritebackBytes. Durability still comes from the fsync at the end; this only moves disk
  // time earlier, beside the copying.
  void start_writeback(uint64_t upto) {
    written_ = std::max(written_, upto);
    if (written_ >= queued_ + kWritebackBytes) queue_writeback();
  }

 public:
  // Queues everything written so far (before the final fsync).
  void queue_writeback() {
    if (written_ <= queued_) return;
    if (::sync_file_range(fd_, static_cast<off_t>(queued_), static_cast<off_t>(written_ - queued_),
                          SYNC_FILE_RANGE_WRITE) != 0 &&
        errno != ENOSYS && errno != EINVAL && errno != ESPIPE)
      check_sys(-1, "sync_file_range", file_);
    queued_ = written_;
  }

 private:
  int fd_;
  std::string file_;
  uint64_t queued_ = 0;   // bytes [0, queued_) were handed to writeback
  uint64_t written_ = 0;  // end of the furthest byte written
};

// Chunks of about 1 MiB along the first dimension: large enough for gzip to work well, small
// enough that a partial read does not inflate the whole tensor.
std::vector<hsize_t> chunk_dims(const Record& r) {
  std::vector<hsize_t> dims(r.shape.begin(), r.shape.end());
  std::size_t row_bytes = dtype_size(r.dtype);
  for (std::size_t i = 1; i < dims.size(); ++i) row_bytes *= static_cast<std::size_t>(dims[i]);
  const hsize_t rows = std::max<hsize_t>(1, (1u << 20) / std::max<std::size_t>(row_bytes, 1));
  dims[0] = std::min(dims[0], rows);
  return dims;
}

bool compressible(const Record& r, const WriteOptions& options) {
  // Chunked layout needs every dimension > 0 and a non-scalar space; a chunk is at most 4 GiB.
  if (options.compression != Compression::Gzip || r.shape.empty() || r.bytes.size() == 0)
    return false;
  std::size_t chunk_bytes = dtype_size(r.dtype);
  for (hsize_t d : chunk_dims(r)) chunk_bytes *= d;
  return chunk_bytes < (std::size_t{1} << 32);
}

h5::Id create_dataset(hid_t file, const Record& r, const WriteOptions& options,
                      const std::string& name) {
  h5::Id space;
  if (r.shape.empty()) {
    space = h5::Id(check_h5(H5Screate(H5S_SCALAR), "H5Screate", name, r.path), H5Sclose);
  } else {
    std::vector<hsize_t> dims(r.shape.begin(), r.shape.end());
    space = h5::Id(check_h5(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                            "H5Screate_simple", name, r.path),
                   H5Sclose);
  }
  h5::Id lcpl(check_h5(H5Pcreate(H5P_LINK_CREATE), "H5Pcreate", name, r.path), H5Pclose);
  check_h5(H5Pset_create_intermediate_group(lcpl.get(), 1), "H5Pset_create_intermediate_group",
           name, r.path);
  h5::Id dcpl(check_h5(H5Pcreate(H5P_DATASET_CREATE), "H5Pcreate", name, r.path), H5Pclose);
  // Data is always written in full: writing fill values first would double the I/O.
  check_h5(H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER), "H5Pset_fill_time", name, r.path);
  if (compressible(r, options)) {
    const std::vector<hsize_t> chunks = chunk_dims(r);
    check_h5(H5Pset_chunk(dcpl.get(), static_cast<int>(chunks.size()), chunks.data()),
             "H5Pset_chunk", name, r.path);
    check_h5(H5Pset_shuffle(dcpl.get()), "H5Pset_shuffle", name, r.path);
    check_h5(H5Pset_deflate(dcpl.get(), static_cast<unsigned>(options.gzip_level)),
             "H5Pset_deflate", name, r.path);
  } else {
    // Contiguous data allocated when the dataset is created: all object headers then sit before
    // all data, so a truncated file keeps its metadata and the reader can name the cut datasets.
    check_h5(H5Pset_layout(dcpl.get(), H5D_CONTIGUOUS), "H5Pset_layout", name, r.path);
    check_h5(H5Pset_alloc_time(dcpl.get(), H5D_ALLOC_TIME_EARLY), "H5Pset_alloc_time", name,
             r.path);
  }
  h5::Id type = h5::file_type(r.dtype);
  return h5::Id(check_h5(H5Dcreate2(file, r.path.c_str(), type.get(), space.get(), lcpl.get(),
                                    dcpl.get(), H5P_DEFAULT),
                         "H5Dcreate2", name, r.path),
                H5Dclose);
}

void write_root_attributes(hid_t file, const CheckpointMeta& meta, const std::string& name) {
  h5::write_attr_i64(file, "format_version", meta.format_version, name, "/");
  h5::write_attr_string(file, "format", "harvest-checkpoint", name, "/");
  h5::write_attr_i64(file, "step", meta.step, name, "/");
  h5::write_attr_i64(file, "epoch", meta.epoch, name, "/");
  h5::write_attr_i64(file, "rank", meta.rank, name, "/");
  h5::write_attr_i64(file, "world_size", meta.world_size, name, "/");
  h5::write_attr_string(
      file, "harvest_version",
      meta.harvest_version.empty() ? std::string(HARVEST_VERSION) : meta.harvest_version, name,
      "/");
  h5::write_attr_string(file, "torch_version", meta.torch_version, name, "/");
  h5::write_attr_string(file, "created_utc",
                        meta.created_utc.empty() ? utc_now_iso8601() : meta.created_utc, name, "/");
  h5::write_attr_string(file, "config_toml", meta.config_toml, name, "/");
}

// Where HDF5 placed a dataset's contiguous data, or nullopt (compressed, compact or empty).
std::optional<uint64_t> data_offset(hid_t dataset) {
  const haddr_t offset = H5Dget_offset(dataset);
  if (offset == HADDR_UNDEF) return std::nullopt;
  return static_cast<uint64_t>(offset);
}

void write_hdf5(const Snapshot& snapshot, const std::string& name, const WriteOptions& options) {
  const auto& records = snapshot.records();

  h5::Id fapl(check_h5(H5Pcreate(H5P_FILE_ACCESS), "H5Pcreate", name, "/"), H5Pclose);
  // The 1.8 file format: checksummed metadata (superblock v2, v2 object headers), readable by
  // every HDF5 since 1.8 and so by h5py/h5dump anywhere.
  check_h5(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_V18), "H5Pset_libver_bounds",
           name, "/");
  // One metadata block sized for every object header up front: all metadata then precedes all
  // contiguous data, so a file cut short keeps its metadata and the reader can name the datasets
  // that were lost. The estimate (headers with two attributes and a path are well under 1 KiB,
  // the config is stored once) errs high; unused space in the block is a small hole, not data.
  const std::size_t meta_bytes =
      64 * 1024 + 1024 * records.size() + 2 * snapshot.meta.config_toml.size();
  check_h5(H5Pset_meta_block_size(fapl.get(), (meta_bytes + 4095) / 4096 * 4096),
           "H5Pset_meta_block_size", name, "/");
  // Large datasets start on a 4 KiB boundary: their data then fills whole pages, and each
  // tensor's pwrite below starts on a page of its own.
  check_h5(H5Pset_alignment(fapl.get(), 64 * 1024, 4096), "H5Pset_alignment", name, "/");
  h5::Id file(check_h5(H5Fcreate(name.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), "H5Fcreate",
                       name, "/"),
              H5Fclose);
  write_root_attributes(file.get(), snapshot.meta, name);

  // Pass 1: every dataset and its attributes (metadata first, see create_dataset).
  std::vector<h5::Id> datasets;
  std::vector<h5::Id> checksum_attrs;
  datasets.reserve(records.size());
  checksum_attrs.reserve(records.size());
  for (const Record& r : records) {
    datasets.push_back(create_dataset(file.get(), r, options, name));
    h5::write_attr_string(datasets.back().get(), "dtype", dtype_name(r.dtype), name, r.path);
    checksum_attrs.push_back(h5::create_attr_u64(datasets.back().get(), "xxh3_64", name, r.path));
  }

  // Pass 2: the data. Contiguous datasets (the default) are plain byte ranges whose place HDF5
  // fixed at creation: they are written with large pwrites of our own, in file order (sequential
  // on disk), hashed on the way. What HDF5 must encode (gzip chunks) goes through H5Dwrite.
  FileFd fd(name);
  DirectDataWriter direct(fd.get(), name);
  std::vector<uint64_t> checksums(records.size());
  std::vector<std::pair<uint64_t, std::size_t>> by_offset;  // (file offset, record index)
  for (std::size_t i = 0; i < records.size(); ++i) {
    const Record& r = records[i];
    if (r.bytes.size() == 0) {
      checksums[i] = checksum_bytes(r.bytes.data(), 0);
    } else if (const auto offset = data_offset(datasets[i].get())) {
      by_offset.emplace_back(*offset, i);
    } else {
      checksums[i] = checksum_bytes(r.bytes.data(), r.bytes.size());
      h5::Id type = h5::file_type(r.dtype);
      check_h5(
          H5Dwrite(datasets[i].get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, r.bytes.data()),
          "H5Dwrite", name, r.path);
    }
  }
  std::sort(by_offset.begin(), by_offset.end());
  for (const auto& [offset, i] : by_offset) checksums[i] = direct.write(records[i], offset);
  direct.queue_writeback();

  for (std::size_t i = 0; i < records.size(); ++i)
    check_h5(H5Awrite(checksum_attrs[i].get(), H5T_NATIVE_UINT64, &checksums[i]), "H5Awrite", name,
             records[i].path + "@xxh3_64");
  checksum_attrs.clear();
  datasets.clear();
  // Closing flushes HDF5's metadata cache: its errors (disk full) must fail the save.
  check_h5(H5Fclose(file.release()), "H5Fclose", name, "/");
  // fsync covers the whole file (HDF5's metadata writes through its own descriptor included).
  if (options.durable) check_sys(::fsync(fd.get()), "fsync", name);
  fd.close_checked();
}

}  // namespace

Compression parse_compression(const std::string& text) {
  if (text == "none") return Compression::None;
  if (text == "gzip") return Compression::Gzip;
  fail(ErrorKind::Config, "checkpoint.compression: unknown value '", text,
       "' (expected none or gzip)");
}

std::string utc_now_iso8601() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void write_checkpoint_file(const Snapshot& snapshot, const std::filesystem::path& path,
                           const WriteOptions& options) {
  HARVEST_REQUIRE(!snapshot.has_pending_copies(), Usage, path.string(),
                  ": snapshot still has deferred copies (call Snapshot::copy_pending() first)");
  h5::QuietErrors quiet;
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  try {
    write_hdf5(snapshot, tmp.string(), options);
    if (options.durable) {
      rename_durably(tmp, path);
    } else {
      std::filesystem::rename(tmp, path);
    }
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw;
  }
}

}  // namespace harvest::checkpoint
