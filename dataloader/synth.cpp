#include "dataloader/synth.hpp"

extern "C" {
#include <libavcodec/avcodec.h>
}

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/cpus.hpp"
#include "core/error.hpp"
#include "dataloader/progress_bar.hpp"
#include "dataloader/video_writer.hpp"

namespace harvest::data {

namespace {

// Distinct salts so that the plan and the pixels of a clip draw from independent streams.
constexpr uint64_t kPlanStream = 0x91a7;
constexpr uint64_t kPixelStream = 0x3c2e;

struct Rgb {
  int r, g, b;
};
const Rgb kColourValues[] = {{220, 40, 40},  {40, 200, 60},   {50, 90, 235},
                             {235, 215, 40}, {240, 240, 240}, {165, 60, 210}};

const char* const kShapePlural[] = {"squares", "circles", "triangles", "diamonds"};
const std::vector<std::vector<std::string>> kCountWords = {
    {"a", "one", "a single"}, {"two", "a pair of"}, {"three", "a group of three"}};
// [motion][variant]: singular verb, plural verb, participle phrase.
struct MotionWords {
  std::vector<std::string> singular, plural, participle;
};
const MotionWords kMotionWords[] = {
    {{"moves up", "rises", "goes up"},
     {"move up", "rise", "go up"},
     {"moving upward", "going up", "rising"}},
    {{"moves down", "falls", "goes down"},
     {"move down", "fall", "go down"},
     {"moving downward", "going down", "falling"}},
    {{"moves left", "slides left", "goes left"},
     {"move left", "slide left", "go left"},
     {"moving to the left", "going left", "sliding left"}},
    {{"moves right", "slides right", "goes right"},
     {"move right", "slide right", "go right"},
     {"moving to the right", "going right", "sliding right"}},
};
const char* const kBackgroundPhrases[][2] = {
    {"on a black background", "against a black backdrop"},
    {"on a gray background", "against a gray backdrop"},
    {"on a striped background", "against a striped backdrop"},
    {"on a checkered background", "against a checkered backdrop"}};

template <class T>
const T& pick(const std::vector<T>& values, SampleRng& rng) {
  return values[rng.below(values.size())];
}

template <class T>
void shuffle(std::vector<T>& values, SampleRng& rng) {
  for (size_t i = values.size(); i > 1; --i) std::swap(values[i - 1], values[rng.below(i)]);
}

std::vector<std::string> make_captions(const SynthClip& c, SampleRng& rng) {
  const std::string shape_singular = synth_shapes()[c.shape];
  const std::string shape = c.count == 1 ? shape_singular : kShapePlural[c.shape];
  const std::string& colour = synth_colours()[c.colour];
  const MotionWords& m = kMotionWords[c.motion];
  std::vector<int> templates = {0, 1, 2, 3};
  shuffle(templates, rng);
  std::vector<std::string> captions;
  for (int k = 0; k < 3; ++k) {
    const std::string count = pick(kCountWords[c.count - 1], rng);
    const std::string verb = pick(c.count == 1 ? m.singular : m.plural, rng);
    const std::string participle = pick(m.participle, rng);
    const std::string bg = kBackgroundPhrases[c.background][rng.below(2)];
    switch (templates[k]) {
      case 0:
        captions.push_back(count + " " + colour + " " + shape + " " + verb + " " + bg);
        break;
      case 1:
        captions.push_back(count + " " + colour + " " + shape + " " + participle + " " + bg);
        break;
      case 2:
        captions.push_back(bg + ", " + count + " " + colour + " " + shape + " " + verb);
        break;
      default:
        captions.push_back(count + " " + shape + " in " + colour + " " + participle + " " + bg);
        break;
    }
  }
  return captions;
}

std::string extension_for(int64_t index) {
  // A few clips in other containers/codecs keep the loader honest about formats.
  if (index % 10 == 3) return avcodec_find_encoder_by_name("libvpx-vp9") ? ".webm" : ".mkv";
  if (index % 10 == 7) return ".mkv";
  return ".mp4";
}

std::string encoders_for(const std::string& video) {
  if (video.size() >= 5 && video.compare(video.size() - 5, 5, ".webm") == 0)
    return "libvpx-vp9,libvpx";
  if (video.size() >= 4 && video.compare(video.size() - 4, 4, ".mkv") == 0) return "mpeg4";
  return "libx264,mpeg4";
}

bool inside_shape(int shape, double dx, double dy, double h) {
  switch (shape) {
    case 0:
      return std::abs(dx) <= h && std::abs(dy) <= h;
    case 1:
      return dx * dx + dy * dy <= h * h;
    case 2:
      return dy >= -h && dy <= h && std::abs(dx) <= (dy + h) * 0.5;
    default:
      return std::abs(dx) + std::abs(dy) <= h * 1.2;
  }
}

}  // namespace

const std::vector<std::string>& synth_shapes() {
  static const std::vector<std::string> v = {"square", "circle", "triangle", "diamond"};
  return v;
}
const std::vector<std::string>& synth_colours() {
  static const std::vector<std::string> v = {"red", "green", "blue", "yellow", "white", "purple"};
  return v;
}
const std::vector<std::string>& synth_motions() {
  static const std::vector<std::string> v = {"up", "down", "left", "right"};
  return v;
}
const std::vector<std::string>& synth_backgrounds() {
  static const std::vector<std::string> v = {"black", "gray", "striped", "checkered"};
  return v;
}

std::vector<std::array<int, 3>> held_out_triples(const SynthOptions& o) {
  const int shapes = static_cast<int>(synth_shapes().size()),
            colours = static_cast<int>(synth_colours().size()),
            motions = static_cast<int>(synth_motions().size());
  std::vector<std::array<int, 3>> all;
  for (int s = 0; s < shapes; ++s)
    for (int c = 0; c < colours; ++c)
      for (int m = 0; m < motions; ++m) all.push_back({s, c, m});
  HARVEST_REQUIRE(o.held_out_triples >= 1 && o.held_out_triples < static_cast<int>(all.size()) / 2,
                  Usage, "held_out_triples must be in [1, ", all.size() / 2, "), got ",
                  o.held_out_triples);
  SampleRng rng(o.seed ^ 0x7e57);
  shuffle(all, rng);
  // Hold out triples while every attribute value keeps at least one training triple per
  // pairing (shape-colour, shape-motion, colour-motion): the test needs composition, not new words.
  std::vector<std::array<int, 3>> held;
  auto pair_seen = [&](int a, int av, int b, int bv, const std::array<int, 3>& extra) {
    for (const auto& t : all) {
      if (t[a] != av || t[b] != bv) continue;
      if (t == extra || std::find(held.begin(), held.end(), t) != held.end()) continue;
      return true;
    }
    return false;
  };
  for (const auto& t : all) {
    if (static_cast<int>(held.size()) == o.held_out_triples) break;
    if (pair_seen(0, t[0], 1, t[1], t) && pair_seen(0, t[0], 2, t[2], t) &&
        pair_seen(1, t[1], 2, t[2], t))
      held.push_back(t);
  }
  std::sort(held.begin(), held.end());
  return held;
}

std::vector<SynthClip> plan_synth(const SynthOptions& o) {
  HARVEST_REQUIRE(o.clips >= 1, Usage, "--clips must be at least 1, got ", o.clips);
  HARVEST_REQUIRE(o.size >= 16 && o.size <= 1024, Usage, "--size must be in [16, 1024], got ",
                  o.size);
  HARVEST_REQUIRE(o.frames >= 2 && o.frames <= 1000, Usage, "--frames must be in [2, 1000], got ",
                  o.frames);
  HARVEST_REQUIRE(o.fps >= 1 && o.fps <= 120, Usage, "--fps must be in [1, 120], got ", o.fps);
  HARVEST_REQUIRE(
      o.test_fraction >= 0 && o.val_fraction >= 0 && o.test_fraction + o.val_fraction < 1, Usage,
      "test and val fractions must be >= 0 and sum below 1");
  const auto held = held_out_triples(o);
  const int counts = kSynthMaxCount, backgrounds = static_cast<int>(synth_backgrounds().size());
  std::vector<std::array<int, 3>> seen;
  for (int s = 0; s < static_cast<int>(synth_shapes().size()); ++s)
    for (int c = 0; c < static_cast<int>(synth_colours().size()); ++c)
      for (int m = 0; m < static_cast<int>(synth_motions().size()); ++m)
        if (std::find(held.begin(), held.end(), std::array<int, 3>{s, c, m}) == held.end())
          seen.push_back({s, c, m});

  // Test clips take distinct held-out combinations (triple x count x background) in a seeded
  // order, so that each test caption has one right answer until the combinations run out.
  struct Combo {
    std::array<int, 3> triple;
    int count, background;
  };
  std::vector<Combo> test_combos;
  for (const auto& t : held)
    for (int n = 1; n <= counts; ++n)
      for (int b = 0; b < backgrounds; ++b) test_combos.push_back({t, n, b});
  SampleRng order_rng(o.seed ^ 0x0bde);
  shuffle(test_combos, order_rng);

  const auto n_test =
      static_cast<int64_t>(std::llround(static_cast<double>(o.clips) * o.test_fraction));
  const auto n_val =
      static_cast<int64_t>(std::llround(static_cast<double>(o.clips) * o.val_fraction));
  const int64_t n_train = o.clips - n_test - n_val;
  std::vector<SynthClip> plan(static_cast<size_t>(o.clips));
  for (int64_t i = 0; i < o.clips; ++i) {
    SynthClip& c = plan[static_cast<size_t>(i)];
    SampleRng rng = SampleRng::for_sample(o.seed, kPlanStream, static_cast<uint64_t>(i));
    c.index = i;
    if (i < n_train + n_val) {
      c.split = i < n_train ? "train" : "val";
      const auto& t = seen[rng.below(seen.size())];
      c.shape = t[0];
      c.colour = t[1];
      c.motion = t[2];
      c.count = 1 + static_cast<int>(rng.below(counts));
      c.background = static_cast<int>(rng.below(static_cast<uint64_t>(backgrounds)));
    } else {
      c.split = "test";
      const Combo& combo =
          test_combos[static_cast<size_t>(i - n_train - n_val) % test_combos.size()];
      c.shape = combo.triple[0];
      c.colour = combo.triple[1];
      c.motion = combo.triple[2];
      c.count = combo.count;
      c.background = combo.background;
    }
    char name[32];
    std::snprintf(name, sizeof name, "videos/%06lld", static_cast<long long>(i));
    c.video = name + extension_for(i);
    c.captions = make_captions(c, rng);
  }
  return plan;
}

std::vector<uint8_t> render_synth_clip(const SynthClip& clip, const SynthOptions& o) {
  const int size = o.size;
  SampleRng rng = SampleRng::for_sample(o.seed, kPixelStream, static_cast<uint64_t>(clip.index));
  std::vector<uint8_t> background(static_cast<size_t>(size) * size * 3);
  const int check = std::max(4, size / 8);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      int v = 12;
      switch (clip.background) {
        case 1:
          v = 100;
          break;
        case 2:
          v = ((x + y) / check) % 2 ? 40 : 85;
          break;  // diagonal: no axis hints the motion
        case 3:
          v = ((x / check) + (y / check)) % 2 ? 30 : 75;
          break;
        default:
          break;
      }
      uint8_t* px = &background[(static_cast<size_t>(y) * size + x) * 3];
      px[0] = px[1] = px[2] = static_cast<uint8_t>(v);
    }

  // Objects start anywhere (the frame wraps around like a torus) and keep apart from each other.
  const double half = size * rng.uniform(0.08, 0.11);
  const double speed = size / 64.0 * rng.uniform(1.5, 2.5);
  const double dirs[4][2] = {{0, -1}, {0, 1}, {-1, 0}, {1, 0}};
  const double vx = dirs[clip.motion][0] * speed, vy = dirs[clip.motion][1] * speed;
  std::vector<std::array<double, 2>> starts;
  auto torus_gap = [size](double a, double b) {
    const double d = std::fmod(std::abs(a - b), size);
    return std::min(d, size - d);
  };
  for (int k = 0; k < clip.count; ++k) {
    std::array<double, 2> p{};
    for (int attempt = 0; attempt < 200; ++attempt) {
      p = {rng.uniform(0, size), rng.uniform(0, size)};
      bool apart = true;
      for (const auto& q : starts) {
        // Moving together, objects that are apart on the axis across the motion never touch.
        const double across = vx != 0 ? torus_gap(p[1], q[1]) : torus_gap(p[0], q[0]);
        const double along = vx != 0 ? torus_gap(p[0], q[0]) : torus_gap(p[1], q[1]);
        if (across < 2.6 * half && along < 2.6 * half) apart = false;
      }
      if (apart) break;
    }
    starts.push_back(p);
  }
  const Rgb base = kColourValues[clip.colour];
  const int jitter[3] = {static_cast<int>(rng.below(21)) - 10, static_cast<int>(rng.below(21)) - 10,
                         static_cast<int>(rng.below(21)) - 10};
  const uint8_t colour[3] = {static_cast<uint8_t>(std::clamp(base.r + jitter[0], 0, 255)),
                             static_cast<uint8_t>(std::clamp(base.g + jitter[1], 0, 255)),
                             static_cast<uint8_t>(std::clamp(base.b + jitter[2], 0, 255))};

  const size_t frame_bytes = background.size();
  std::vector<uint8_t> frames(frame_bytes * static_cast<size_t>(o.frames));
  for (int f = 0; f < o.frames; ++f) {
    uint8_t* out = frames.data() + frame_bytes * static_cast<size_t>(f);
    std::copy(background.begin(), background.end(), out);
    for (const auto& s : starts) {
      const double cx = std::fmod(s[0] + vx * f + 4.0 * size, size);
      const double cy = std::fmod(s[1] + vy * f + 4.0 * size, size);
      const int x0 = static_cast<int>(std::floor(cx - half - 1)),
                x1 = static_cast<int>(std::ceil(cx + half + 1));
      const int y0 = static_cast<int>(std::floor(cy - half - 1)),
                y1 = static_cast<int>(std::ceil(cy + half + 1));
      for (int y = y0; y <= y1; ++y)
        for (int x = x0; x <= x1; ++x) {
          if (!inside_shape(clip.shape, x + 0.5 - cx, y + 0.5 - cy, half)) continue;
          const int wx = ((x % size) + size) % size, wy = ((y % size) + size) % size;
          uint8_t* px = out + (static_cast<size_t>(wy) * size + wx) * 3;
          px[0] = colour[0];
          px[1] = colour[1];
          px[2] = colour[2];
        }
    }
  }
  return frames;
}

std::vector<SynthClip> write_synth_dataset(const SynthOptions& o) {
  HARVEST_REQUIRE(!o.out_dir.empty(), Usage, "--out is required");
  const auto plan = plan_synth(o);
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(fs::path(o.out_dir) / "videos", ec);
  HARVEST_REQUIRE(!ec, Runtime, o.out_dir, "/videos: cannot create: ", ec.message());

  const int threads = o.threads > 0 ? o.threads : usable_cpus();
  std::atomic<int64_t> next{0}, done{0};
  std::atomic<bool> stop{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&] {
    while (!stop) {
      const int64_t i = next++;
      if (i >= static_cast<int64_t>(plan.size())) return;
      try {
        const SynthClip& clip = plan[static_cast<size_t>(i)];
        const auto pixels = render_synth_clip(clip, o);
        VideoWriterOptions wo;
        wo.width = wo.height = o.size;
        wo.fps = o.fps;
        wo.encoders = encoders_for(clip.video);
        VideoWriter writer((fs::path(o.out_dir) / clip.video).string(), wo);
        const size_t frame_bytes = static_cast<size_t>(o.size) * o.size * 3;
        for (int f = 0; f < o.frames; ++f)
          writer.write(pixels.data() + frame_bytes * static_cast<size_t>(f));
        writer.close();
        ++done;
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        stop = true;
      }
    }
  };
  {
    ProgressBar bar("synth", o.clips, false);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back(work);
    while (done < o.clips && !stop) {
      bar.update(done);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    for (auto& t : pool) t.join();
    bar.update(done);
    if (o.progress) bar.finish();
  }
  if (error) std::rethrow_exception(error);

  for (const char* split : {"train", "val", "test"}) {
    const std::string path = (fs::path(o.out_dir) / (std::string(split) + ".jsonl")).string();
    std::ofstream out(path, std::ios::trunc);
    HARVEST_REQUIRE(out, Runtime, path, ": cannot open for writing");
    for (const auto& c : plan) {
      if (c.split != split) continue;
      nlohmann::ordered_json line;
      line["video"] = c.video;
      line["captions"] = c.captions;
      line["label"] = synth_motions()[c.motion];
      out << line.dump() << '\n';
    }
    HARVEST_REQUIRE(out.flush(), Runtime, path, ": write failed");
  }
  nlohmann::ordered_json meta;
  meta["seed"] = o.seed;
  meta["clips"] = o.clips;
  meta["size"] = o.size;
  meta["frames"] = o.frames;
  meta["fps"] = o.fps;
  meta["shapes"] = synth_shapes();
  meta["colours"] = synth_colours();
  meta["motions"] = synth_motions();
  meta["backgrounds"] = synth_backgrounds();
  nlohmann::ordered_json held = nlohmann::ordered_json::array();
  for (const auto& t : held_out_triples(o))
    held.push_back({synth_shapes()[t[0]], synth_colours()[t[1]], synth_motions()[t[2]]});
  meta["held_out_triples"] = held;
  std::ofstream(fs::path(o.out_dir) / "synth.json", std::ios::trunc) << meta.dump(2) << '\n';
  return plan;
}

}  // namespace harvest::data
