#include "checkpoint/dtype.hpp"

#include <array>
#include <utility>

namespace harvest::checkpoint {

namespace {
struct DTypeInfo {
  DType dtype;
  const char* name;
  std::size_t size;
};
constexpr std::array<DTypeInfo, 10> kDTypes = {{
    {DType::F64, "f64", 8},
    {DType::F32, "f32", 4},
    {DType::F16, "f16", 2},
    {DType::BF16, "bf16", 2},
    {DType::I64, "i64", 8},
    {DType::I32, "i32", 4},
    {DType::I16, "i16", 2},
    {DType::I8, "i8", 1},
    {DType::U8, "u8", 1},
    {DType::Bool, "bool", 1},
}};

const DTypeInfo& info(DType dtype) {
  for (const auto& i : kDTypes)
    if (i.dtype == dtype) return i;
  return kDTypes[0];  // unreachable: every enumerator is in the table
}
}  // namespace

const char* dtype_name(DType dtype) {
  return info(dtype).name;
}

std::size_t dtype_size(DType dtype) {
  return info(dtype).size;
}

std::optional<DType> parse_dtype(const std::string& name) {
  for (const auto& i : kDTypes)
    if (name == i.name) return i.dtype;
  return std::nullopt;
}

}  // namespace harvest::checkpoint
