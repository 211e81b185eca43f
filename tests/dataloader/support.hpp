// Test helpers for the dataloader: a temporary folder, videos made with the ffmpeg CLI, and the
// PyAV reference (frame_reference.py run with the project's Python, HARVEST_PYTHON).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/support/run.hpp"

namespace harvest::test {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "harvest-data-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// ffmpeg -y -v error <args> <out>; throws with ffmpeg's output on failure.
inline std::string ffmpeg(const std::string& args, const std::string& out) {
  const auto r = run("ffmpeg -nostdin -y -v error " + args + " '" + out + "'");
  if (r.exit_code != 0) throw std::runtime_error("ffmpeg failed: " + args + "\n" + r.output);
  return out;
}

// 64x48 at 10 fps whose frame N is a flat grey of luma 20 + 7N: frames are told apart by their
// mean.
inline std::string ramp_source(double seconds, int width = 64, int height = 48,
                               const std::string& pix = "yuv420p") {
  std::ostringstream s;
  s << "-f lavfi -i \"color=c=gray:s=" << width << "x" << height << ":r=10:d=" << seconds
    << ",format=" << pix << ",geq=lum='20+7*N':cb=128:cr=128\"";
  return s.str();
}

struct RefFrame {
  std::optional<double> t;
  double mean = 0;
};

inline std::vector<RefFrame> reference_frames(const std::string& video) {
  const auto r =
      run(HARVEST_PYTHON " '" HARVEST_SOURCE_DIR "/tests/dataloader/frame_reference.py' '" +
          video + "'");
  if (r.exit_code != 0)
    throw std::runtime_error("frame_reference.py failed on " + video + "\n" + r.output);
  std::vector<RefFrame> frames;
  std::istringstream lines(r.output);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] != '{') continue;
    const auto j = nlohmann::json::parse(line);
    RefFrame f;
    if (!j["t"].is_null()) f.t = j["t"].get<double>();
    f.mean = j["mean"].get<double>();
    frames.push_back(f);
  }
  return frames;
}

}  // namespace harvest::test
