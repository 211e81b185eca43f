// Element types a checkpoint record can hold, with their names as stored in the file.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace harvest::checkpoint {

// bf16 has no HDF5 or numpy type: it is stored as uint16 with a "dtype" attribute "bf16"
// (docs/checkpoint-format.md). f16 uses HDF5's IEEE half layout, which h5py reads as float16.
enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, Bool };

// "f32", "bf16", "i64", "bool", ...: the value of every dataset's "dtype" attribute.
const char* dtype_name(DType dtype);

// Inverse of dtype_name; nullopt for an unknown name.
std::optional<DType> parse_dtype(const std::string& name);

// Bytes per element.
std::size_t dtype_size(DType dtype);

}  // namespace harvest::checkpoint
