#include "checkpoint/snapshot.hpp"

#include <cstring>
#include <limits>

#include "core/error.hpp"

namespace harvest::checkpoint {

bool CheckpointMeta::operator==(const CheckpointMeta& o) const {
  return format_version == o.format_version && step == o.step && epoch == o.epoch &&
         rank == o.rank && world_size == o.world_size && harvest_version == o.harvest_version &&
         torch_version == o.torch_version && created_utc == o.created_utc &&
         config_toml == o.config_toml;
}

int64_t Record::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::size_t record_nbytes(const std::string& path, DType dtype, const std::vector<int64_t>& shape) {
  std::size_t n = dtype_size(dtype);
  for (int64_t d : shape) {
    HARVEST_REQUIRE(d >= 0, Usage, "checkpoint record '", path, "': negative dimension ", d);
    HARVEST_REQUIRE(
        d == 0 || n <= std::numeric_limits<std::size_t>::max() / static_cast<std::size_t>(d), Usage,
        "checkpoint record '", path, "': shape overflows size_t");
    n *= static_cast<std::size_t>(d);
  }
  return n;
}

void check_record_path(const std::string& path) {
  HARVEST_REQUIRE(!path.empty(), Usage, "checkpoint record path is empty");
  HARVEST_REQUIRE(path.front() != '/' && path.back() != '/', Usage, "checkpoint record path '",
                  path, "' must not start or end with '/'");
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    const std::string part = path.substr(start, end - start);
    HARVEST_REQUIRE(!part.empty() && part != "." && part != "..", Usage, "checkpoint record path '",
                    path, "' has an empty, '.' or '..' component");
    start = end + 1;
  }
}

Snapshot::~Snapshot() {
  recycle();
}

Snapshot& Snapshot::operator=(Snapshot&& other) noexcept {
  if (this != &other) {
    recycle();
    meta = std::move(other.meta);
    pool_ = std::move(other.pool_);
    copier_ = std::move(other.copier_);
    pending_ = std::move(other.pending_);
    records_ = std::move(other.records_);
    datasets_ = std::move(other.datasets_);
    groups_ = std::move(other.groups_);
  }
  return *this;
}

void Snapshot::recycle() {
  if (!pool_) return;
  std::vector<HostBuffer> buffers;
  buffers.reserve(records_.size());
  for (auto& r : records_) buffers.push_back(std::move(r.bytes));
  records_.clear();
  pool_->replace(std::move(buffers));
}

void Snapshot::claim_path(const std::string& path) {
  check_record_path(path);
  HARVEST_REQUIRE(!datasets_.count(path), Usage, "checkpoint record '", path, "' added twice");
  HARVEST_REQUIRE(!groups_.count(path), Usage, "checkpoint record '", path,
                  "' clashes with a group of the same name (another record lies under it)");
  std::vector<std::string> prefixes;
  for (std::size_t slash = path.find('/'); slash != std::string::npos;
       slash = path.find('/', slash + 1)) {
    prefixes.push_back(path.substr(0, slash));
    HARVEST_REQUIRE(!datasets_.count(prefixes.back()), Usage, "checkpoint record '", path,
                    "' lies under record '", prefixes.back(), "', which is a dataset, not a group");
  }
  datasets_.insert(path);
  groups_.insert(prefixes.begin(), prefixes.end());
}

std::byte* Snapshot::add(const std::string& path, DType dtype, const std::vector<int64_t>& shape) {
  const std::size_t nbytes = record_nbytes(path, dtype, shape);
  claim_path(path);
  records_.push_back(Record{path, dtype, shape, pool_ ? pool_->take(nbytes) : HostBuffer(nbytes)});
  return records_.back().bytes.data();
}

void Snapshot::add_copy(const std::string& path, DType dtype, const std::vector<int64_t>& shape,
                        const void* src) {
  const std::size_t nbytes = record_nbytes(path, dtype, shape);
  claim_path(path);
  HostBuffer bytes = pool_ ? pool_->take(nbytes) : HostBuffer(nbytes);
  if (nbytes) std::memcpy(bytes.data(), src, nbytes);
  records_.push_back(Record{path, dtype, shape, std::move(bytes)});
}

void Snapshot::add_deferred(const std::string& path, DType dtype, const std::vector<int64_t>& shape,
                            const void* src) {
  const std::size_t nbytes = record_nbytes(path, dtype, shape);
  std::byte* dst = add(path, dtype, shape);
  if (nbytes) pending_.push_back({dst, static_cast<const std::byte*>(src), nbytes});
}

void Snapshot::copy_pending() {
  if (pending_.empty()) return;
  if (copier_) {
    copier_->run(pending_);
  } else {
    for (const CopyTask& t : pending_) std::memcpy(t.dst, t.src, t.size);
  }
  pending_.clear();
}

void Snapshot::add_blob(const std::string& path, std::string_view bytes) {
  add_copy(path, DType::U8, {static_cast<int64_t>(bytes.size())}, bytes.data());
}

void Snapshot::add_record(Record record) {
  const std::size_t nbytes = record_nbytes(record.path, record.dtype, record.shape);
  HARVEST_REQUIRE(nbytes == record.bytes.size(), Usage, "checkpoint record '", record.path,
                  "': ", record.bytes.size(), " bytes for shape and dtype needing ", nbytes);
  claim_path(record.path);
  records_.push_back(std::move(record));
}

const Record* Snapshot::find(const std::string& path) const {
  for (const auto& r : records_)
    if (r.path == path) return &r;
  return nullptr;
}

std::string Snapshot::blob(const std::string& path) const {
  const Record* r = find(path);
  HARVEST_REQUIRE(r != nullptr, Runtime, "checkpoint has no record '", path, "'");
  HARVEST_REQUIRE(r->dtype == DType::U8, Runtime, "checkpoint record '", path, "' is ",
                  dtype_name(r->dtype), ", not a u8 blob");
  return std::string(reinterpret_cast<const char*>(r->bytes.data()), r->bytes.size());
}

std::size_t Snapshot::total_bytes() const {
  std::size_t n = 0;
  for (const auto& r : records_) n += r.bytes.size();
  return n;
}

}  // namespace harvest::checkpoint
