#include "checkpoint/writer.hpp"

#include <algorithm>
#include <ctime>
#include <system_error>
#include <thread>

#include "checkpoint/checksum.hpp"
#include "checkpoint/durable_file.hpp"
#include "checkpoint/h5_util.hpp"
#include "core/check_hdf5.hpp"
#include "core/version.hpp"

namespace harvest::checkpoint {

namespace {

// Joins on every path out, so an exception in the writer never leaves a running thread behind.
class JoiningThread {
 public:
  template <class F>
  explicit JoiningThread(F&& f) : thread_(std::forward<F>(f)) {}
  ~JoiningThread() { join(); }
  JoiningThread(const JoiningThread&) = delete;
  JoiningThread& operator=(const JoiningThread&) = delete;
  void join() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::thread thread_;
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

void write_hdf5(const Snapshot& snapshot, const std::string& name, const WriteOptions& options) {
  const auto& records = snapshot.records();

  // Checksums run on a second thread while this one writes: the save then costs max(hash, I/O),
  // not their sum.
  std::vector<uint64_t> checksums(records.size());
  JoiningThread hasher([&records, &checksums] {
    for (std::size_t i = 0; i < records.size(); ++i)
      checksums[i] = checksum_bytes(records[i].bytes.data(), records[i].bytes.size());
  });

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
  // Pass 2: the data, in order (sequential on disk for contiguous datasets).
  for (std::size_t i = 0; i < records.size(); ++i) {
    const Record& r = records[i];
    if (r.bytes.size() == 0) continue;
    h5::Id type = h5::file_type(r.dtype);
    check_h5(H5Dwrite(datasets[i].get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, r.bytes.data()),
             "H5Dwrite", name, r.path);
  }
  hasher.join();
  for (std::size_t i = 0; i < records.size(); ++i)
    check_h5(H5Awrite(checksum_attrs[i].get(), H5T_NATIVE_UINT64, &checksums[i]), "H5Awrite", name,
             records[i].path + "@xxh3_64");
  checksum_attrs.clear();
  datasets.clear();
  // Closing flushes HDF5's metadata cache: its errors (disk full) must fail the save.
  check_h5(H5Fclose(file.release()), "H5Fclose", name, "/");
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
  h5::QuietErrors quiet;
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  try {
    write_hdf5(snapshot, tmp.string(), options);
    if (options.durable) fsync_file(tmp);
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
