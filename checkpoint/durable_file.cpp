#include "checkpoint/durable_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "core/check_sys.hpp"

namespace harvest::checkpoint {

namespace {
// Closes the descriptor on every path out, errors included.
class Fd {
 public:
  Fd(const std::filesystem::path& path, int flags, mode_t mode = 0644)
      : fd_(check_sys(::open(path.c_str(), flags | O_CLOEXEC, mode), "open", path.string())) {}
  explicit Fd(int adopted) : fd_(adopted) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // close() can report a deferred write error: check it where data was written.
  void close_checked(const std::string& what) {
    const int fd = fd_;
    fd_ = -1;
    check_sys(::close(fd), "close", what);
  }

 private:
  int fd_;
};
}  // namespace

void fsync_file(const std::filesystem::path& path) {
  Fd fd(path, O_RDONLY);
  check_sys(::fsync(fd.get()), "fsync", path.string());
}

void fsync_dir(const std::filesystem::path& dir) {
  Fd fd(dir.empty() ? std::filesystem::path(".") : dir, O_RDONLY | O_DIRECTORY);
  check_sys(::fsync(fd.get()), "fsync", dir.string());
}

void rename_durably(const std::filesystem::path& from, const std::filesystem::path& to) {
  check_sys(::rename(from.c_str(), to.c_str()), "rename", from.string() + " -> " + to.string());
  fsync_dir(to.parent_path());
}

void write_file_atomically(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  {
    Fd fd(tmp, O_WRONLY | O_CREAT | O_TRUNC);
    std::size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      check_sys(n, "write", tmp.string());
      done += static_cast<std::size_t>(n);
    }
    check_sys(::fsync(fd.get()), "fsync", tmp.string());
    fd.close_checked(tmp.string());
  }
  rename_durably(tmp, path);
}

std::optional<std::string> read_small_file(const std::filesystem::path& path) {
  const int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (raw < 0 && errno == ENOENT) return std::nullopt;
  Fd fd(check_sys(raw, "open", path.string()));
  std::string text;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    check_sys(n, "read", path.string());
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  return text;
}

}  // namespace harvest::checkpoint
