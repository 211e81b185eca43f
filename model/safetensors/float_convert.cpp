// Element conversions to float32. Every path is exact: each source value is representable in
// float32 except F64, I32/U32/I64/U64 beyond 2^24, which round to nearest.
#include <cmath>
#include <cstring>
#include <limits>

#include "core/error.hpp"
#include "model/safetensors/safetensors.hpp"

namespace harvest::safetensors {

namespace {

template <class T>
T load_le(const uint8_t* p) {
  static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian");
  T value;
  std::memcpy(&value, p, sizeof(T));  // any alignment
  return value;
}

template <class T>
void convert_int(const uint8_t* bytes, size_t count, float* out) {
  for (size_t i = 0; i < count; ++i) out[i] = static_cast<float>(load_le<T>(bytes + i * sizeof(T)));
}

}  // namespace

float half_to_float(uint16_t bits) {
  const float sign = (bits & 0x8000) ? -1.0f : 1.0f;
  const int exponent = (bits >> 10) & 0x1F;
  const int mantissa = bits & 0x3FF;
  if (exponent == 0) return sign * std::ldexp(static_cast<float>(mantissa), -24);
  if (exponent == 31)
    return mantissa == 0 ? sign * std::numeric_limits<float>::infinity()
                         : std::numeric_limits<float>::quiet_NaN();
  return sign * std::ldexp(static_cast<float>(mantissa | 0x400), exponent - 25);
}

float bfloat16_to_float(uint16_t bits) {
  const uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &wide, sizeof(value));
  return value;
}

float float8_e4m3_to_float(uint8_t bits) {
  const float sign = (bits & 0x80) ? -1.0f : 1.0f;
  const int exponent = (bits >> 3) & 0xF;
  const int mantissa = bits & 0x7;
  if (exponent == 0xF && mantissa == 0x7) return std::numeric_limits<float>::quiet_NaN();
  if (exponent == 0) return sign * std::ldexp(static_cast<float>(mantissa), -9);
  return sign * std::ldexp(static_cast<float>(mantissa | 0x8), exponent - 10);
}

float float8_e5m2_to_float(uint8_t bits) {
  // E5M2 is the upper byte of an IEEE half.
  return half_to_float(static_cast<uint16_t>(bits) << 8);
}

void convert_to_float32(Dtype dtype, const uint8_t* bytes, size_t count, float* out) {
  if (count == 0) return;  // empty tensors: `out` may be null
  switch (dtype) {
    case Dtype::F32:
      std::memcpy(out, bytes, count * sizeof(float));
      return;
    case Dtype::F16:
      for (size_t i = 0; i < count; ++i) out[i] = half_to_float(load_le<uint16_t>(bytes + 2 * i));
      return;
    case Dtype::BF16:
      for (size_t i = 0; i < count; ++i)
        out[i] = bfloat16_to_float(load_le<uint16_t>(bytes + 2 * i));
      return;
    case Dtype::F64:
      for (size_t i = 0; i < count; ++i) out[i] = static_cast<float>(load_le<double>(bytes + 8 * i));
      return;
    case Dtype::F8_E4M3:
      for (size_t i = 0; i < count; ++i) out[i] = float8_e4m3_to_float(bytes[i]);
      return;
    case Dtype::F8_E5M2:
      for (size_t i = 0; i < count; ++i) out[i] = float8_e5m2_to_float(bytes[i]);
      return;
    case Dtype::BOOL:
      for (size_t i = 0; i < count; ++i) out[i] = bytes[i] != 0 ? 1.0f : 0.0f;
      return;
    case Dtype::U8: return convert_int<uint8_t>(bytes, count, out);
    case Dtype::I8: return convert_int<int8_t>(bytes, count, out);
    case Dtype::I16: return convert_int<int16_t>(bytes, count, out);
    case Dtype::U16: return convert_int<uint16_t>(bytes, count, out);
    case Dtype::I32: return convert_int<int32_t>(bytes, count, out);
    case Dtype::U32: return convert_int<uint32_t>(bytes, count, out);
    case Dtype::I64: return convert_int<int64_t>(bytes, count, out);
    case Dtype::U64: return convert_int<uint64_t>(bytes, count, out);
  }
  HARVEST_ASSERT(false, "unhandled dtype ", static_cast<int>(dtype));
}

}  // namespace harvest::safetensors
