// A LibTorch-free reader of the safetensors format (Hugging Face): an 8-byte little-endian
// header length N, N bytes of JSON {name: {"dtype", "shape", "data_offsets": [begin, end]},
// "__metadata__": {string: string}}, then the data buffer the offsets index.
//
// Everything is validated before any tensor is handed out, and every error names the file and
// the tensor: header length within the file and under the limit, JSON object, no duplicate
// names, known dtype, non-negative shape, begin <= end <= buffer size, shape x dtype size ==
// end - begin (overflow-checked), tensors neither overlapping nor leaving holes (the buffer is
// exactly covered, as the reference implementation requires).
//
// The file is memory-mapped (read-only); tensor bytes are views into the mapping and live as
// long as the SafetensorsFile.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace harvest::safetensors {

enum class Dtype { BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64 };

const char* to_string(Dtype dtype);
std::optional<Dtype> parse_dtype(const std::string& name);
size_t dtype_size(Dtype dtype);

struct TensorInfo {
  std::string name;
  Dtype dtype = Dtype::F32;
  std::vector<int64_t> shape;
  size_t begin = 0;  // offsets into the data buffer
  size_t end = 0;
  size_t nbytes() const { return end - begin; }
  int64_t numel() const;
};

struct ReadLimits {
  size_t max_header_bytes = 100u << 20;  // the reference implementation's limit
  size_t max_rank = 16;
};

class SafetensorsFile {
 public:
  // Throws Runtime (missing/unreadable file) or Config (malformed content), naming the file.
  static SafetensorsFile open(const std::string& path, const ReadLimits& limits = {});
  ~SafetensorsFile();
  SafetensorsFile(SafetensorsFile&&) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept;

  const std::string& path() const;
  const std::map<std::string, std::string>& metadata() const;
  // Tensors in name order.
  const std::vector<TensorInfo>& tensors() const;
  bool contains(const std::string& name) const;
  // Throws Config naming the file and the tensor when absent.
  const TensorInfo& info(const std::string& name) const;
  // The tensor's raw little-endian bytes (info(name).nbytes() of them).
  const uint8_t* data(const std::string& name) const;
  // The values converted to float32 (every dtype; integers and bool by value).
  std::vector<float> to_float32(const std::string& name) const;

 private:
  struct Impl;
  explicit SafetensorsFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Element conversions, exposed for tests.
float half_to_float(uint16_t bits);
float bfloat16_to_float(uint16_t bits);
float float8_e4m3_to_float(uint8_t bits);  // E4M3FN: no infinities, S.1111.111 is NaN
float float8_e5m2_to_float(uint8_t bits);

// Converts `count` elements of `dtype` at `bytes` (little-endian, any alignment).
void convert_to_float32(Dtype dtype, const uint8_t* bytes, size_t count, float* out);

}  // namespace harvest::safetensors
