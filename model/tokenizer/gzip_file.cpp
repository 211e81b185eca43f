#include "model/tokenizer/gzip_file.hpp"

#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/check_sys.hpp"
#include "core/error.hpp"

namespace harvest::tokenizer {

namespace {

class GzFile {
 public:
  explicit GzFile(const std::string& path) : file_(gzopen(path.c_str(), "rb")) {}
  ~GzFile() {
    if (file_) gzclose(file_);
  }
  GzFile(const GzFile&) = delete;
  GzFile& operator=(const GzFile&) = delete;
  gzFile get() const { return file_; }

 private:
  gzFile file_;
};

class Deflater {
 public:
  Deflater() {
    // windowBits 15 + 16: a gzip wrapper with the default (zeroed) header.
    HARVEST_ASSERT(deflateInit2(&stream_, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK,
                   "deflateInit2 failed");
  }
  ~Deflater() { deflateEnd(&stream_); }
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;

  std::string compress(const std::string& input) {
    std::string out(deflateBound(&stream_, input.size()) + 64, '\0');
    stream_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
    stream_.avail_in = static_cast<uInt>(input.size());
    stream_.next_out = reinterpret_cast<Bytef*>(out.data());
    stream_.avail_out = static_cast<uInt>(out.size());
    HARVEST_ASSERT(deflate(&stream_, Z_FINISH) == Z_STREAM_END, "deflate did not finish");
    out.resize(stream_.total_out);
    return out;
  }

 private:
  z_stream stream_{};
};

}  // namespace

std::string read_maybe_gzip(const std::string& path) {
  HARVEST_REQUIRE(std::filesystem::is_regular_file(path), Runtime, path,
                  ": no such file (expected a vocabulary file)");
  GzFile file(path);
  if (!file.get()) check_sys(-1, "gzopen", path);
  std::string out;
  char buffer[1 << 16];
  for (;;) {
    const int n = gzread(file.get(), buffer, sizeof(buffer));
    if (n < 0) {
      int code = 0;
      const char* message = gzerror(file.get(), &code);
      fail(ErrorKind::Runtime, path, ": corrupt or unreadable gzip data: ", message);
    }
    if (n == 0) break;
    out.append(buffer, static_cast<size_t>(n));
  }
  // gzread reports a truncated stream only through gzerror at the end.
  int code = 0;
  const char* message = gzerror(file.get(), &code);
  HARVEST_REQUIRE(code == Z_OK, Runtime, path,
                  ": corrupt or truncated gzip data: ", message);
  return out;
}

void write_gzip_atomic(const std::string& path, const std::string& content) {
  HARVEST_REQUIRE(content.size() < (1ull << 31), Usage, path, ": vocabulary too large to write");
  const std::string compressed = Deflater().compress(content);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    HARVEST_REQUIRE(out.good(), Runtime, tmp, ": cannot open for writing");
    out.write(compressed.data(), static_cast<std::streamsize>(compressed.size()));
    out.flush();
    HARVEST_REQUIRE(out.good(), Runtime, tmp, ": write failed");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    fail(ErrorKind::Runtime, path, ": cannot rename ", tmp, " into place");
  }
}

}  // namespace harvest::tokenizer
