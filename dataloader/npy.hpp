// NumPy .npy (format 1.0) writer for uint8 arrays: what `harvest data frames` hands to users.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace harvest::data {

// Writes `data` (C order) with the given shape to `path` atomically (temp file + rename).
void write_npy_u8(const std::string& path, const std::vector<int64_t>& shape, const uint8_t* data);

}  // namespace harvest::data
