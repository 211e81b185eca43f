// Per-dataset checksums: XXH3-64 (Debian's libxxhash) of a record's raw little-endian bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace harvest::checkpoint {

uint64_t checksum_bytes(const void* data, std::size_t size);

// "xxh3-64:0123456789abcdef": how checksums appear in errors and `harvest ckpt inspect`.
std::string checksum_text(uint64_t checksum);

}  // namespace harvest::checkpoint
