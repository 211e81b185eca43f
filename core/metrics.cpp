#include "core/metrics.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "core/check_sys.hpp"

namespace harvest {

MetricsWriter::MetricsWriter(std::string path) : path_(std::move(path)) {
  const auto parent = std::filesystem::path(path_).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    HARVEST_REQUIRE(!ec, Runtime, "cannot create metrics folder ", parent.string(), ": ",
                    ec.message());
  }
  fd_ = check_sys(::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644), "open",
                  path_);
}

MetricsWriter::~MetricsWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void MetricsWriter::write(nlohmann::json record) {
  if (!record.contains("time")) {
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    record["time"] = std::chrono::duration<double>(now).count();
  }
  const std::string line = record.dump() + "\n";
  const auto written = check_sys(::write(fd_, line.data(), line.size()), "write", path_);
  HARVEST_REQUIRE(static_cast<size_t>(written) == line.size(), Runtime, "write(", path_,
                  ") wrote ", written, " of ", line.size(), " bytes (disk full?)");
}

}  // namespace harvest
