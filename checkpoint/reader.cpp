#include "checkpoint/reader.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "checkpoint/checksum.hpp"
#include "checkpoint/h5_util.hpp"
#include "core/check_hdf5.hpp"
#include "core/check_sys.hpp"

namespace harvest::checkpoint {

namespace fs = std::filesystem;

namespace {

static_assert(std::is_same_v<hid_t, int64_t>, "CheckpointReader stores the file id as int64_t");

// The end-of-file address the superblock records (HDF5 superblock versions 0-3 at offset 0), or
// nullopt when the signature or version is not recognised.
std::optional<uint64_t> stored_eof(const fs::path& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  unsigned char sb[64] = {};
  const ssize_t n = ::pread(fd, sb, sizeof sb, 0);
  ::close(fd);
  static const unsigned char kSignature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  if (n < 56 || std::memcmp(sb, kSignature, 8) != 0) return std::nullopt;
  std::size_t at = 0;
  switch (sb[8]) {
    case 0:
      at = 40;
      break;  // fixed fields, then base, free-space, EOF addresses
    case 1:
      at = 44;
      break;  // v0 plus indexed-storage K and padding
    case 2:
    case 3:
      at = 28;
      break;  // sizes and flags, then base, extension, EOF addresses
    default:
      return std::nullopt;
  }
  if (sb[8] <= 1 ? sb[13] != 8 : sb[9] != 8) return std::nullopt;  // only 8-byte offsets
  uint64_t eof = 0;
  std::memcpy(&eof, sb + at, 8);  // little-endian, as is the host (see h5_util.hpp)
  return eof;
}

struct DatasetExtent {
  std::string path;
  uint64_t offset = 0;
  uint64_t bytes = 0;
};

herr_t collect_dataset_name(hid_t group, const char* name, const H5L_info_t* info, void* out) {
  if (info->type != H5L_TYPE_HARD) return 0;
  const hid_t obj = H5Oopen(group, name, H5P_DEFAULT);
  if (obj < 0) return -1;
  if (H5Iget_type(obj) == H5I_DATASET) static_cast<std::vector<std::string>*>(out)->push_back(name);
  H5Oclose(obj);
  return 0;
}

std::vector<std::string> dataset_names(hid_t file, const std::string& name) {
  std::vector<std::string> names;
  check_h5(H5Lvisit(file, H5_INDEX_NAME, H5_ITER_INC, collect_dataset_name, &names), "H5Lvisit",
           name, "/");
  std::sort(names.begin(), names.end());
  return names;
}

// A file shorter than its superblock says: opens a sparse copy (the original's first 64 MiB,
// where harvest puts all metadata, then a hole up to the recorded end) to learn which datasets
// lie past the cut. Never touches the original.
std::string describe_truncation(const fs::path& file, uint64_t on_disk, uint64_t expected) {
  std::string tmpl = (fs::temp_directory_path() / "harvest-ckpt-diagnose-XXXXXX").string();
  const int out = ::mkstemp(tmpl.data());
  if (out < 0) return "";
  const int in = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  std::vector<char> buf(1 << 20);
  uint64_t copied = 0;
  const uint64_t limit = std::min<uint64_t>(on_disk, uint64_t{64} << 20);
  bool ok = in >= 0;
  while (ok && copied < limit) {
    const ssize_t n = ::pread(in, buf.data(), std::min<uint64_t>(buf.size(), limit - copied),
                              static_cast<off_t>(copied));
    ok = n > 0 &&
         ::pwrite(out, buf.data(), static_cast<std::size_t>(n), static_cast<off_t>(copied)) == n;
    copied += n > 0 ? static_cast<uint64_t>(n) : 0;
  }
  ok = ok && ::ftruncate(out, static_cast<off_t>(expected)) == 0;
  if (in >= 0) ::close(in);
  ::close(out);
  std::string text;
  const hid_t f = ok ? H5Fopen(tmpl.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT) : -1;
  if (f >= 0) {
    h5::Id owned(f, H5Fclose);
    std::vector<std::string> names;
    if (H5Lvisit(f, H5_INDEX_NAME, H5_ITER_INC, collect_dataset_name, &names) >= 0) {
      std::vector<DatasetExtent> cut;
      for (const auto& n : names) {
        h5::Id ds(H5Dopen2(f, n.c_str(), H5P_DEFAULT), H5Dclose);
        if (ds.get() < 0) continue;
        const haddr_t offset = H5Dget_offset(ds.get());
        const hsize_t bytes = H5Dget_storage_size(ds.get());
        // Chunked datasets have no single offset: their chunks are checked when read.
        if (offset != HADDR_UNDEF && offset + bytes > on_disk) cut.push_back({n, offset, bytes});
      }
      std::sort(cut.begin(), cut.end(),
                [](const auto& a, const auto& b) { return a.offset < b.offset; });
      if (!cut.empty()) {
        text = cat("; dataset '", cut.front().path, "' is cut (its data spans bytes ",
                   cut.front().offset, "..", cut.front().offset + cut.front().bytes, ")");
        if (cut.size() > 1) text += cat(" and ", cut.size() - 1, " later dataset(s) are missing");
      }
    }
  } else {
    text = "; its metadata is lost as well";
  }
  H5Eclear2(H5E_DEFAULT);
  ::unlink(tmpl.c_str());
  return text;
}

hid_t open_file(const fs::path& file) {
  HARVEST_REQUIRE(fs::exists(file), Runtime, "checkpoint file ", file.string(), " does not exist");
  const hid_t id = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (id >= 0) return id;
  const uint64_t on_disk = fs::file_size(file);
  const std::optional<uint64_t> expected = stored_eof(file);
  if (expected && *expected > on_disk) {
    H5Eclear2(H5E_DEFAULT);
    fail(ErrorKind::Runtime, file.string(), ": checkpoint file is truncated: ", on_disk,
         " bytes on disk, its HDF5 superblock records ", *expected,
         describe_truncation(file, on_disk, *expected));
  }
  return check_h5(id, "H5Fopen", file.string(), "/");
}

std::string layout_of(hid_t ds, const std::string& file, const std::string& path) {
  h5::Id dcpl(check_h5(H5Dget_create_plist(ds), "H5Dget_create_plist", file, path), H5Pclose);
  switch (H5Pget_layout(dcpl.get())) {
    case H5D_CONTIGUOUS:
      return "contiguous";
    case H5D_COMPACT:
      return "compact";
    case H5D_CHUNKED: {
      std::string text = "chunked";
      const int nfilters = H5Pget_nfilters(dcpl.get());
      for (int i = 0; i < nfilters; ++i) {
        unsigned flags = 0;
        size_t nelmts = 0;
        char fname[64] = {};
        const H5Z_filter_t id = H5Pget_filter2(dcpl.get(), static_cast<unsigned>(i), &flags,
                                               &nelmts, nullptr, sizeof fname, fname, nullptr);
        if (id == H5Z_FILTER_DEFLATE)
          text += "+gzip";
        else if (id == H5Z_FILTER_SHUFFLE)
          text += "+shuffle";
        else
          text += cat("+filter", id);
      }
      return text;
    }
    default:
      return "other";
  }
}

RecordInfo describe(hid_t file, const std::string& name, const std::string& path) {
  h5::Id ds(check_h5(H5Dopen2(file, path.c_str(), H5P_DEFAULT), "H5Dopen2", name, path), H5Dclose);
  RecordInfo info;
  info.path = path;
  HARVEST_REQUIRE(h5::has_attr(ds.get(), "dtype") && h5::has_attr(ds.get(), "xxh3_64"), Runtime,
                  name, ": dataset '", path,
                  "' has no dtype/xxh3_64 attribute (not written by harvest?)");
  const std::string dtype_text = h5::read_attr_string(ds.get(), "dtype", name, path);
  const auto dtype = parse_dtype(dtype_text);
  HARVEST_REQUIRE(dtype.has_value(), Runtime, name, ": dataset '", path, "' has unknown dtype '",
                  dtype_text, "'");
  info.dtype = *dtype;
  info.checksum = h5::read_attr_u64(ds.get(), "xxh3_64", name, path);

  h5::Id type(check_h5(H5Dget_type(ds.get()), "H5Dget_type", name, path), H5Tclose);
  h5::Id expected = h5::file_type(info.dtype);
  HARVEST_REQUIRE(H5Tequal(type.get(), expected.get()) > 0, Runtime, name, ": dataset '", path,
                  "' is stored with an HDF5 type that does not match its dtype attribute '",
                  dtype_text, "'");
  h5::Id space(check_h5(H5Dget_space(ds.get()), "H5Dget_space", name, path), H5Sclose);
  const int rank =
      check_h5(H5Sget_simple_extent_ndims(space.get()), "H5Sget_simple_extent_ndims", name, path);
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  check_h5(H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr),
           "H5Sget_simple_extent_dims", name, path);
  info.shape.assign(dims.begin(), dims.end());
  info.nbytes = record_nbytes(path, info.dtype, info.shape);
  info.stored_bytes = H5Dget_storage_size(ds.get());
  info.layout = layout_of(ds.get(), name, path);
  const haddr_t offset = H5Dget_offset(ds.get());
  if (offset != HADDR_UNDEF) info.file_offset = offset;
  return info;
}

}  // namespace

CheckpointReader::CheckpointReader(const fs::path& file) : file_(file) {
  h5::QuietErrors quiet;
  file_id_ = open_file(file);
  try {
    const std::string name = file.string();
    const hid_t f = file_id_;
    HARVEST_REQUIRE(h5::has_attr(f, "format_version"), Runtime, name,
                    ": not a harvest checkpoint (no format_version attribute on /)");
    meta_.format_version = h5::read_attr_i64(f, "format_version", name, "/");
    HARVEST_REQUIRE(meta_.format_version >= 1 && meta_.format_version <= kFormatVersion, Runtime,
                    name, ": checkpoint format version ", meta_.format_version,
                    " is not supported (this harvest reads 1..", kFormatVersion, ")");
    meta_.step = h5::read_attr_i64(f, "step", name, "/");
    meta_.epoch = h5::read_attr_i64(f, "epoch", name, "/");
    meta_.rank = h5::read_attr_i64(f, "rank", name, "/");
    meta_.world_size = h5::read_attr_i64(f, "world_size", name, "/");
    meta_.harvest_version = h5::read_attr_string(f, "harvest_version", name, "/");
    meta_.torch_version = h5::read_attr_string(f, "torch_version", name, "/");
    meta_.created_utc = h5::read_attr_string(f, "created_utc", name, "/");
    meta_.config_toml = h5::read_attr_string(f, "config_toml", name, "/");
    for (const auto& path : dataset_names(f, name)) records_.push_back(describe(f, name, path));
  } catch (...) {
    H5Fclose(file_id_);
    throw;
  }
}

CheckpointReader::~CheckpointReader() {
  if (file_id_ >= 0) H5Fclose(file_id_);
}

const RecordInfo* CheckpointReader::find(const std::string& path) const {
  const auto it =
      std::lower_bound(records_.begin(), records_.end(), path,
                       [](const RecordInfo& r, const std::string& p) { return r.path < p; });
  return it != records_.end() && it->path == path ? &*it : nullptr;
}

void CheckpointReader::read_into(const std::string& path, void* dst, std::size_t nbytes) const {
  h5::QuietErrors quiet;
  const std::string name = file_.string();
  const RecordInfo* info = find(path);
  HARVEST_REQUIRE(info != nullptr, Runtime, name, ": checkpoint has no dataset '", path, "'");
  HARVEST_REQUIRE(nbytes == info->nbytes, Usage, name, ": dataset '", path, "' holds ",
                  info->nbytes, " bytes, the destination has ", nbytes);
  if (nbytes > 0) {
    h5::Id ds(check_h5(H5Dopen2(file_id_, path.c_str(), H5P_DEFAULT), "H5Dopen2", name, path),
              H5Dclose);
    h5::Id type = h5::file_type(info->dtype);
    check_h5(H5Dread(ds.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, dst), "H5Dread", name,
             path);
  }
  const uint64_t actual = checksum_bytes(dst, nbytes);
  HARVEST_REQUIRE(actual == info->checksum, Runtime, name, ": dataset '", path,
                  "' is corrupt: checksum ", checksum_text(actual), " does not match the stored ",
                  checksum_text(info->checksum));
}

HostBuffer CheckpointReader::read(const std::string& path) const {
  const RecordInfo* info = find(path);
  HARVEST_REQUIRE(info != nullptr, Runtime, file_.string(), ": checkpoint has no dataset '", path,
                  "'");
  HostBuffer buffer(info->nbytes);
  read_into(path, buffer.data(), buffer.size());
  return buffer;
}

Snapshot CheckpointReader::read_all() const {
  Snapshot snapshot;
  snapshot.meta = meta_;
  for (const RecordInfo& info : records_)
    snapshot.add_record(Record{info.path, info.dtype, info.shape, read(info.path)});
  return snapshot;
}

std::vector<std::string> CheckpointReader::verify() const {
  std::vector<std::string> problems;
  std::size_t largest = 0;
  for (const RecordInfo& info : records_) largest = std::max(largest, info.nbytes);
  HostBuffer scratch(largest);
  for (const RecordInfo& info : records_) {
    try {
      read_into(info.path, scratch.data(), info.nbytes);
    } catch (const Error& e) {
      problems.push_back(e.what());
    }
  }
  return problems;
}

void verify_checkpoint_file(const fs::path& file) {
  const CheckpointReader reader(file);
  const auto problems = reader.verify();
  if (problems.empty()) return;
  std::string text = problems.front();
  if (problems.size() > 1) text += cat(" (and ", problems.size() - 1, " more corrupt dataset(s))");
  fail(ErrorKind::Runtime, text);
}

}  // namespace harvest::checkpoint
