#include "model/safetensors/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "core/json.hpp"
#include "core/check_sys.hpp"
#include "core/error.hpp"

namespace harvest::safetensors {

namespace {

struct DtypeName {
  Dtype dtype;
  const char* name;
  size_t size;
};

constexpr DtypeName kDtypes[] = {
    {Dtype::BOOL, "BOOL", 1},       {Dtype::U8, "U8", 1},   {Dtype::I8, "I8", 1},
    {Dtype::F8_E5M2, "F8_E5M2", 1}, {Dtype::F8_E4M3, "F8_E4M3", 1},
    {Dtype::I16, "I16", 2},         {Dtype::U16, "U16", 2}, {Dtype::F16, "F16", 2},
    {Dtype::BF16, "BF16", 2},       {Dtype::I32, "I32", 4}, {Dtype::U32, "U32", 4},
    {Dtype::F32, "F32", 4},         {Dtype::F64, "F64", 8}, {Dtype::I64, "I64", 8},
    {Dtype::U64, "U64", 8}};

// RAII read-only mapping of a whole file.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path) {
    const int fd = check_sys(::open(path.c_str(), O_RDONLY | O_CLOEXEC), "open", path);
    struct stat st {};
    if (::fstat(fd, &st) < 0) {
      ::close(fd);
      check_sys(-1, "fstat", path);
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ > 0) {
      void* addr = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      ::close(fd);
      if (addr == MAP_FAILED) check_sys(-1, "mmap", path);
      data_ = static_cast<const uint8_t*>(addr);
    } else {
      ::close(fd);
    }
  }
  ~MappedFile() {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

TensorInfo parse_tensor(const std::string& path, const std::string& name, const nlohmann::json& entry,
                        size_t data_size, const ReadLimits& limits) {
  const std::string where = cat(path, ": tensor '", name, "'");
  HARVEST_REQUIRE(entry.is_object(), Config, where, ": expected an object with dtype, shape, data_offsets");
  for (const auto& [key, value] : entry.items())
    HARVEST_REQUIRE(key == "dtype" || key == "shape" || key == "data_offsets", Config, where,
                    ": unknown field \"", key, "\"");
  TensorInfo t;
  t.name = name;

  HARVEST_REQUIRE(entry.contains("dtype") && entry["dtype"].is_string(), Config, where,
                  ": missing or non-string \"dtype\"");
  const auto dtype = parse_dtype(entry["dtype"].get<std::string>());
  HARVEST_REQUIRE(dtype.has_value(), Config, where, ": unknown dtype \"",
                  entry["dtype"].get<std::string>(), "\"");
  t.dtype = *dtype;

  HARVEST_REQUIRE(entry.contains("shape") && entry["shape"].is_array(), Config, where,
                  ": missing or non-array \"shape\"");
  HARVEST_REQUIRE(entry["shape"].size() <= limits.max_rank, Config, where, ": rank ",
                  entry["shape"].size(), " exceeds the limit ", limits.max_rank);
  size_t expected = dtype_size(t.dtype);
  bool overflow = false;
  for (const auto& dim : entry["shape"]) {
    HARVEST_REQUIRE(dim.is_number_integer() && dim.get<int64_t>() >= 0, Config, where,
                    ": shape entries must be non-negative integers, got ", json_excerpt(dim));
    const auto d = dim.get<uint64_t>();
    t.shape.push_back(static_cast<int64_t>(d));
    if (d != 0 && expected > SIZE_MAX / d) overflow = true;
    expected = overflow ? expected : expected * d;
  }
  for (int64_t d : t.shape)
    if (d == 0) overflow = false, expected = 0;  // an empty tensor has no bytes
  HARVEST_REQUIRE(!overflow, Config, where, ": shape ", shape_text(t.shape), " is too large");

  HARVEST_REQUIRE(entry.contains("data_offsets") && entry["data_offsets"].is_array() &&
                      entry["data_offsets"].size() == 2,
                  Config, where, ": \"data_offsets\" must be [begin, end]");
  for (const auto& v : entry["data_offsets"])
    HARVEST_REQUIRE(v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0),
                    Config, where, ": data_offsets must be non-negative integers, got ", json_excerpt(v));
  const auto begin = entry["data_offsets"][0].get<uint64_t>();
  const auto end = entry["data_offsets"][1].get<uint64_t>();
  HARVEST_REQUIRE(begin <= end, Config, where, ": data_offsets [", begin, ", ", end,
                  "] end before they begin");
  HARVEST_REQUIRE(end <= data_size, Config, where, ": data_offsets [", begin, ", ", end,
                  "] run past the data buffer (", data_size, " bytes)");
  t.begin = static_cast<size_t>(begin);
  t.end = static_cast<size_t>(end);
  HARVEST_REQUIRE(t.nbytes() == expected, Config, where, ": shape ", shape_text(t.shape), " x ",
                  to_string(t.dtype), " (", dtype_size(t.dtype), " bytes) = ", expected,
                  " bytes, but data_offsets span ", t.nbytes(), " bytes");
  return t;
}

}  // namespace

const char* to_string(Dtype dtype) {
  for (const auto& d : kDtypes)
    if (d.dtype == dtype) return d.name;
  return "?";
}

std::optional<Dtype> parse_dtype(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return d.dtype;
  return std::nullopt;
}

size_t dtype_size(Dtype dtype) {
  for (const auto& d : kDtypes)
    if (d.dtype == dtype) return d.size;
  return 0;
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

struct SafetensorsFile::Impl {
  std::string path;
  MappedFile file;
  const uint8_t* data = nullptr;  // start of the data buffer
  std::map<std::string, std::string> metadata;
  std::vector<TensorInfo> tensors;
  std::map<std::string, size_t> index;

  explicit Impl(const std::string& p) : path(p), file(p) {}
};

SafetensorsFile::SafetensorsFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SafetensorsFile::~SafetensorsFile() = default;
SafetensorsFile::SafetensorsFile(SafetensorsFile&&) noexcept = default;
SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&&) noexcept = default;

SafetensorsFile SafetensorsFile::open(const std::string& path, const ReadLimits& limits) {
  auto impl = std::make_unique<Impl>(path);
  const uint8_t* bytes = impl->file.data();
  const size_t size = impl->file.size();
  HARVEST_REQUIRE(size >= 8, Config, path, ": ", size,
                  " bytes, too small for a safetensors file (8-byte header length first)");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
  HARVEST_REQUIRE(header_len <= limits.max_header_bytes, Config, path, ": header length ",
                  header_len, " exceeds the limit of ", limits.max_header_bytes, " bytes");
  HARVEST_REQUIRE(header_len <= size - 8, Config, path, ": header length ", header_len,
                  " runs past the end of the file (", size, " bytes)");
  HARVEST_REQUIRE(header_len >= 2 && bytes[8] == '{', Config, path,
                  ": the header must be a JSON object starting with '{'");
  const char* header = reinterpret_cast<const char*>(bytes + 8);
  const size_t data_size = size - 8 - header_len;

  // Duplicate names would silently shadow each other in a JSON object: reject them.
  std::set<std::string> seen;
  const nlohmann::json::parser_callback_t on_event =
      [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
        HARVEST_REQUIRE(depth <= kMaxJsonDepth, Config, path, ": header nests deeper than ", kMaxJsonDepth,
                        " levels (a safetensors header is 3 deep)");
        if (event == nlohmann::json::parse_event_t::key && depth == 1) {
          const auto name = parsed.get<std::string>();
          HARVEST_REQUIRE(seen.insert(name).second, Config, path, ": tensor '", name,
                          "' appears twice in the header");
        }
        return true;
      };
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(header, header + header_len, on_event);
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorKind::Config, path, ": header is not valid JSON: ", e.what());
  }
  HARVEST_REQUIRE(doc.is_object(), Config, path, ": the header must be a JSON object");

  for (const auto& [name, entry] : doc.items()) {
    if (name == "__metadata__") {
      HARVEST_REQUIRE(entry.is_object(), Config, path, ": __metadata__ must be an object");
      for (const auto& [key, value] : entry.items()) {
        HARVEST_REQUIRE(value.is_string(), Config, path, ": __metadata__ '", key,
                        "' must be a string");
        impl->metadata[key] = value.get<std::string>();
      }
      continue;
    }
    impl->tensors.push_back(parse_tensor(path, name, entry, data_size, limits));
  }

  // The tensors must tile the data buffer exactly: no overlaps, no holes.
  std::vector<const TensorInfo*> by_offset;
  for (const auto& t : impl->tensors) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  size_t covered = 0;
  const TensorInfo* previous = nullptr;
  for (const TensorInfo* t : by_offset) {
    HARVEST_REQUIRE(t->begin >= covered, Config, path, ": tensor '", t->name, "' bytes [", t->begin,
                    ", ", t->end, ") overlap tensor '", previous ? previous->name : "", "' (ends at ",
                    covered, ")");
    HARVEST_REQUIRE(t->begin == covered, Config, path, ": bytes [", covered, ", ", t->begin,
                    ") before tensor '", t->name, "' belong to no tensor");
    covered = t->end;
    previous = t;
  }
  HARVEST_REQUIRE(covered == data_size, Config, path, ": the last ", data_size - covered,
                  " bytes of the data buffer belong to no tensor");

  std::sort(impl->tensors.begin(), impl->tensors.end(),
            [](const TensorInfo& a, const TensorInfo& b) { return a.name < b.name; });
  for (size_t i = 0; i < impl->tensors.size(); ++i) impl->index[impl->tensors[i].name] = i;
  impl->data = bytes + 8 + header_len;
  return SafetensorsFile(std::move(impl));
}

const std::string& SafetensorsFile::path() const { return impl_->path; }
const std::map<std::string, std::string>& SafetensorsFile::metadata() const { return impl_->metadata; }
const std::vector<TensorInfo>& SafetensorsFile::tensors() const { return impl_->tensors; }
bool SafetensorsFile::contains(const std::string& name) const { return impl_->index.count(name) > 0; }

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  const auto it = impl_->index.find(name);
  HARVEST_REQUIRE(it != impl_->index.end(), Config, impl_->path, ": no tensor '", name, "'");
  return impl_->tensors[it->second];
}

const uint8_t* SafetensorsFile::data(const std::string& name) const {
  return impl_->data + info(name).begin;
}

std::vector<float> SafetensorsFile::to_float32(const std::string& name) const {
  const TensorInfo& t = info(name);
  std::vector<float> out(t.nbytes() / dtype_size(t.dtype));
  convert_to_float32(t.dtype, impl_->data + t.begin, out.size(), out.data());
  return out;
}

}  // namespace harvest::safetensors
