#include "bench/decode/decode_bench.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <map>
#include <thread>

#include "core/error.hpp"
#include "core/time.hpp"
#include "dataloader/clip_decoder.hpp"
#include "dataloader/video_writer.hpp"

namespace harvest::bench {

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty()      ? 0.0
         : v.size() % 2 ? v[v.size() / 2]
                        : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// Moving gradients and noise-free shapes at 640x360: x264 veryfast with B-frames and a keyframe
// every `gop` frames (30: one a second; 250: x264's own default, one GOP for the whole clip).
std::vector<std::string> make_videos(const std::filesystem::path& dir, int gop, int seconds) {
  std::filesystem::create_directories(dir);
  std::vector<std::string> out;
  const int w = 640, h = 360, fps = 30;
  std::vector<uint8_t> rgb(static_cast<size_t>(w) * h * 3);
  for (int v = 0; v < 4; ++v) {
    const std::string path = (dir / ("bench" + std::to_string(v) + ".mp4")).string();
    data::VideoWriterOptions o;
    o.width = w;
    o.height = h;
    o.fps = fps;
    o.crf = 23;
    o.gop = gop;
    data::VideoWriter writer(path, o);
    for (int f = 0; f < fps * seconds; ++f) {
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
          uint8_t* p = &rgb[(static_cast<size_t>(y) * w + x) * 3];
          p[0] = static_cast<uint8_t>((x + 3 * f + 40 * v) & 0xff);
          p[1] = static_cast<uint8_t>((y * 2 + f) & 0xff);
          p[2] = static_cast<uint8_t>(((x / 40 + y / 40 + f / 15) % 2) * 200);
        }
      writer.write(rgb.data());
    }
    writer.close();
    out.push_back(path);
  }
  return out;
}

struct HarvestRun {
  double clips_per_s = 0;
  double decoded_frames_per_clip = 0;  // frames reconstructed by the decoder (skips excluded)
};

// One timed run of harvest's decode path: clips/s over `passes` passes of the list.
HarvestRun run_harvest(const DecodeBenchOptions& o, bool early_drain = true) {
  const int64_t total = static_cast<int64_t>(o.videos.size()) * o.passes;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> checksum{0};
  std::atomic<int64_t> decoded{0};
  Stopwatch clock;
  auto work = [&] {
    data::ClipOptions c;
    c.frames = o.frames;
    c.out_width = c.out_height = o.size;
    c.reader.threads = 1;
    c.reader.early_drain = early_drain;
    for (int64_t i = next++; i < total; i = next++) {
      data::SampleRng rng(static_cast<uint64_t>(i));
      const data::Clip clip =
          data::decode_clip(o.videos[static_cast<size_t>(i) % o.videos.size()], c, rng);
      checksum += clip.pixels[clip.pixels.size() / 2];  // keeps the work observable
      decoded += clip.decoded_frames;
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < o.threads; ++t) pool.emplace_back(work);
  for (auto& t : pool) t.join();
  const double seconds = clock.seconds();
  return {static_cast<double>(total) / seconds,
          static_cast<double>(decoded.load()) / static_cast<double>(total)};
}

// The decoders a user would pick instead, one FFmpeg thread each: PyAV, and torchcodec (PyTorch's
// decoder) in its exact and approximate seek modes.
constexpr const char* kReferences[] = {"pyav", "torchcodec", "torchcodec-approximate"};

// "torchcodec-approximate" -> "torchcodec_approximate", for JSON keys.
std::string key_of(std::string name) {
  for (char& c : name)
    if (c == '-') c = '_';
  return name;
}

// One timed reference run: its JSON summary (clips_per_s, decoded_frames_per_clip where known).
nlohmann::json run_reference(const DecodeBenchOptions& o, const std::string& decoder) {
  std::string cmd = std::string(HARVEST_PYTHON) + " '" + o.reference_script + "' --decoder " + decoder + " --frames " +
                    std::to_string(o.frames) + " --size " + std::to_string(o.size) + " --threads " +
                    std::to_string(o.threads) + " --passes " + std::to_string(o.passes);
  for (const auto& v : o.videos) cmd += " '" + v + "'";
  FILE* pipe = ::popen((cmd + " 2>&1").c_str(), "r");
  HARVEST_REQUIRE(pipe, Runtime, "cannot run ", cmd);
  std::string output;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) output.append(buf, n);
  const int status = ::pclose(pipe);
  HARVEST_REQUIRE(status == 0, Runtime, decoder, " reference failed (", cmd, "):\n", output);
  const auto last = output.find_last_of('{');
  HARVEST_REQUIRE(last != std::string::npos, Runtime, decoder, " reference printed no JSON:\n", output);
  return nlohmann::json::parse(output.substr(last));
}

}  // namespace

nlohmann::json run_decode_bench(const DecodeBenchOptions& options) {
  DecodeBenchOptions o = options;
  HARVEST_REQUIRE(
      o.frames > 0 && o.size > 0 && o.threads > 0 && o.reps > 0 && o.passes > 0, Usage,
      "bench decode: --frames, --size, --threads, --reps and --passes must be positive");
  std::filesystem::path generated;
  if (o.videos.empty()) {
    generated = std::filesystem::temp_directory_path() /
                ("harvest-bench-decode-" + std::to_string(::getpid()));
    HARVEST_REQUIRE(o.gop > 0 && o.seconds > 0, Usage,
                    "bench decode: --gop and --seconds must be positive, got ", o.gop, " and ",
                    o.seconds);
    std::fprintf(stderr, "generating 4 H.264 clips (640x360, %d s, 30 fps, GOP %d) in %s\n",
                 o.seconds, o.gop, generated.c_str());
    o.videos = make_videos(generated, o.gop, o.seconds);
  }
  if (o.reference_script.empty())
    o.reference_script = HARVEST_SOURCE_DIR "/bench/reference/decode_reference.py";
  data::VideoReader probe(o.videos[0], data::ReaderOptions{});
  const std::string codec = probe.info().codec;

  run_harvest(o);  // warm-up: page cache, lazy library initialisation
  std::vector<double> ours, no_drain;
  std::map<std::string, std::vector<double>> theirs;
  double decoded_per_clip = 0, pyav_decoded_per_clip = 0;
  for (int r = 0; r < o.reps; ++r) {
    const HarvestRun run = run_harvest(o);
    ours.push_back(run.clips_per_s);
    decoded_per_clip = run.decoded_frames_per_clip;
    no_drain.push_back(run_harvest(o, /*early_drain=*/false).clips_per_s);
    std::fprintf(stderr, "rep %d harvest %.2f clips/s  without early drain %.2f clips/s", r,
                 ours.back(), no_drain.back());
    if (o.reference) {
      for (const char* decoder : kReferences) {
        const nlohmann::json ref = run_reference(o, decoder);
        theirs[decoder].push_back(ref.at("clips_per_s").get<double>());
        if (std::string(decoder) == "pyav") pyav_decoded_per_clip = ref.value("decoded_frames_per_clip", 0.0);
        std::fprintf(stderr, "  %s %.2f clips/s", decoder, theirs[decoder].back());
      }
    }
    std::fprintf(stderr, "\n");
  }
  if (!generated.empty()) std::filesystem::remove_all(generated);

  nlohmann::json j;
  j["clips_per_s"] = median(ours);
  j["frames_per_s"] = median(ours) * static_cast<double>(o.frames);
  j["no_early_drain_clips_per_s"] = median(no_drain);
  j["early_drain_speedup"] = median(no_drain) > 0 ? median(ours) / median(no_drain) : 0.0;
  if (o.reference) {
    for (const char* decoder : kReferences) {
      const double m = median(theirs[decoder]);
      j[key_of(decoder) + "_clips_per_s"] = m;
      j["ratio_vs_" + key_of(decoder)] = m > 0 ? median(ours) / m : 0.0;
    }
    j["pyav_decoded_frames_per_clip"] = pyav_decoded_per_clip;
  }
  j["decoded_frames_per_clip"] = decoded_per_clip;
  j["videos"] = o.videos.size();
  if (!generated.empty()) {
    j["gop"] = o.gop;
    j["seconds"] = o.seconds;
  }
  j["codec"] = codec;
  j["frames"] = o.frames;
  j["size"] = o.size;
  j["threads"] = o.threads;
  j["reps"] = o.reps;
  return j;
}

}  // namespace harvest::bench
