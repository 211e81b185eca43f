#include "dataloader/npy.hpp"

#include <cstdio>
#include <fstream>

#include "core/error.hpp"

namespace harvest::data {

void write_npy_u8(const std::string& path, const std::vector<int64_t>& shape, const uint8_t* data) {
  std::string dims;
  int64_t count = 1;
  for (int64_t d : shape) {
    dims += std::to_string(d) + ",";
    count *= d;
  }
  if (shape.size() > 1) dims.pop_back();  // (3,) keeps its comma, (2, 3) doesn't need one
  std::string header = "{'descr': '|u1', 'fortran_order': False, 'shape': (" + dims + "), }";
  // Magic (6) + version (2) + length (2) + header + '\n' is padded to a multiple of 64.
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';

  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    HARVEST_REQUIRE(out, Runtime, tmp, ": cannot open for writing");
    out.write("\x93NUMPY\x01\x00", 8);
    const uint16_t len = static_cast<uint16_t>(header.size());
    const char len_le[2] = {static_cast<char>(len & 0xff), static_cast<char>(len >> 8)};
    out.write(len_le, 2);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(count));
    out.flush();
    HARVEST_REQUIRE(out, Runtime, tmp, ": write failed");
  }
  HARVEST_REQUIRE(std::rename(tmp.c_str(), path.c_str()) == 0, Runtime, path, ": rename from ", tmp,
                  " failed");
}

}  // namespace harvest::data
