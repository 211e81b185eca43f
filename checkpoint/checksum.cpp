#include "checkpoint/checksum.hpp"

#include <xxhash.h>

#include <cstdio>

namespace harvest::checkpoint {

uint64_t checksum_bytes(const void* data, std::size_t size) {
  return XXH3_64bits(data, size);
}

std::string checksum_text(uint64_t checksum) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "xxh3-64:%016llx", static_cast<unsigned long long>(checksum));
  return buf;
}

}  // namespace harvest::checkpoint
