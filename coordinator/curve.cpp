#include "coordinator/curve.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <fstream>
#include <sstream>

#include "core/check_sys.hpp"
#include "core/check_zmq.hpp"

namespace harvest::coord {
namespace {

bool valid_z85_key(const std::string& key) {
  if (key.size() != 40) return false;
  uint8_t raw[32];
  return zmq_z85_decode(raw, key.c_str()) != nullptr;
}

std::string trim(const std::string& s) {
  const auto begin = s.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  return s.substr(begin, s.find_last_not_of(" \t\r\n") - begin + 1);
}

void write_file(const std::string& path, const std::string& text, mode_t mode) {
  const int fd = check_sys(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode), "open", path);
  const std::string line = text + "\n";
  const ssize_t n = ::write(fd, line.data(), line.size());
  const int saved = errno;
  ::close(fd);
  errno = saved;
  check_sys(n, "write", path);
  HARVEST_REQUIRE(static_cast<size_t>(n) == line.size(), Runtime, "short write to ", path);
}

}  // namespace

CurveKeyPair generate_keypair() {
  char pub[41], sec[41];
  check_zmq(zmq_curve_keypair(pub, sec), "zmq_curve_keypair", "libzmq built without CURVE?");
  return CurveKeyPair{pub, sec};
}

void write_keypair(const CurveKeyPair& keys, const std::string& prefix) {
  write_file(prefix + ".secret", keys.secret_key, 0600);
  write_file(prefix + ".public", keys.public_key, 0644);
}

std::string read_key_file(const std::string& path, const std::string& key_name) {
  std::ifstream in(path);
  HARVEST_REQUIRE(in.good(), Config, key_name, ": cannot read key file '", path, "'");
  std::stringstream text;
  text << in.rdbuf();
  const std::string key = trim(text.str());
  HARVEST_REQUIRE(valid_z85_key(key), Config, key_name, ": '", path,
                  "' does not hold a Z85 CURVE key (40 characters; create one with `harvest keygen --out PREFIX`)");
  return key;
}

std::set<std::string> read_authorized_keys(const std::string& path) {
  std::ifstream in(path);
  HARVEST_REQUIRE(in.good(), Config, "coordinator.curve_authorized_keys: cannot read '", path, "'");
  std::set<std::string> keys;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    // '#' is a Z85 digit: only whole lines starting with it are comments.
    const std::string key = trim(line);
    if (key.empty() || key[0] == '#') continue;
    HARVEST_REQUIRE(valid_z85_key(key), Config, "coordinator.curve_authorized_keys: ", path, ":", number,
                    ": not a Z85 public key");
    keys.insert(key);
  }
  return keys;
}

}  // namespace harvest::coord
