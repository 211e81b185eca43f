// The synthetic dataset: determinism per seed, held-out combinations, motion only across frames.
#include <catch2/catch.hpp>
#include <fstream>
#include <set>
#include <sstream>

#include "dataloader/clip_decoder.hpp"
#include "dataloader/manifest.hpp"
#include "dataloader/synth.hpp"
#include "tests/dataloader/support.hpp"

using namespace harvest;
using namespace harvest::data;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

SynthOptions small(const std::string& out, uint64_t seed) {
  SynthOptions o;
  o.out_dir = out;
  o.clips = 24;
  o.seed = seed;
  o.size = 32;
  o.frames = 6;
  o.threads = 2;
  o.test_fraction = 0.25;
  o.val_fraction = 0.125;
  o.progress = false;
  return o;
}

}  // namespace

TEST_CASE("the plan holds out triples but keeps every attribute value in training",
          "[dataloader][synth]") {
  SynthOptions o;
  o.clips = 1000;
  o.seed = 4;
  const auto plan = plan_synth(o);
  const auto held = held_out_triples(o);
  CHECK(held.size() == 12);
  std::set<std::array<int, 3>> train_triples, test_triples;
  std::set<int> shapes, colours, motions, counts;
  std::set<std::string> test_combos;
  int n_test = 0;
  for (const auto& c : plan) {
    REQUIRE(c.captions.size() == 3);
    const std::array<int, 3> t{c.shape, c.colour, c.motion};
    if (c.split == "test") {
      ++n_test;
      test_triples.insert(t);
      test_combos.insert(std::to_string(c.shape) + std::to_string(c.colour) +
                         std::to_string(c.motion) + std::to_string(c.count) +
                         std::to_string(c.background));
    } else {
      train_triples.insert(t);
      shapes.insert(c.shape);
      colours.insert(c.colour);
      motions.insert(c.motion);
      counts.insert(c.count);
    }
  }
  CHECK(n_test == 100);
  CHECK(test_combos.size() == 100);  // every test caption has one right clip
  for (const auto& t : test_triples) CHECK(train_triples.count(t) == 0);
  CHECK(shapes.size() == synth_shapes().size());
  CHECK(colours.size() == synth_colours().size());
  CHECK(motions.size() == synth_motions().size());
  CHECK(counts.size() == 3);
  // Captions name the attributes.
  const auto& c = plan[0];
  for (const auto& caption : c.captions) {
    CHECK_THAT(caption, Catch::Contains(synth_colours()[c.colour]));
    CHECK_THAT(caption, Catch::Contains(synth_backgrounds()[c.background]));
  }
}

TEST_CASE("synthesis is deterministic per seed and decodes back", "[dataloader][synth]") {
  test::TempDir dir;
  const auto a = write_synth_dataset(small(dir.file("a"), 7));
  write_synth_dataset(small(dir.file("b"), 7));
  write_synth_dataset(small(dir.file("c"), 8));
  for (const char* split : {"train.jsonl", "val.jsonl", "test.jsonl"}) {
    CHECK(slurp(dir.file(std::string("a/") + split)) == slurp(dir.file(std::string("b/") + split)));
  }
  CHECK(slurp(dir.file("a/train.jsonl")) != slurp(dir.file("c/train.jsonl")));

  const Manifest m = load_manifest(dir.file("a/train.jsonl"));
  CHECK(m.entries.size() == 15);
  std::set<std::string> extensions;
  for (const auto& c : a) extensions.insert(c.video.substr(c.video.rfind('.')));
  CHECK(extensions.size() >= 2);  // mp4 plus mkv/webm

  ClipOptions opts;
  opts.frames = 6;
  opts.out_width = opts.out_height = 32;
  for (const auto& c : a) {
    SampleRng r1(0), r2(0);
    const Clip x = decode_clip(dir.file("a/" + c.video), opts, r1);
    const Clip y = decode_clip(dir.file("b/" + c.video), opts, r2);
    INFO(c.video);
    CHECK(x.pixels == y.pixels);
    // The rendered clip survives encoding: decoded frames stay close to the rendered ones.
    const auto rendered = render_synth_clip(c, small(dir.file("a"), 7));
    double diff = 0;
    for (size_t i = 0; i < rendered.size(); ++i)
      diff += std::abs(int(rendered[i]) - int(x.pixels[i]));
    CHECK(diff / static_cast<double>(rendered.size()) < 12.0);
  }
}

TEST_CASE("objects move by the stated direction between frames", "[dataloader][synth]") {
  SynthOptions o;
  o.size = 64;
  o.frames = 8;
  for (int motion = 0; motion < 4; ++motion) {
    SynthClip c;
    c.index = 5;
    c.shape = 0;
    c.colour = 4;  // white on black: the centroid of bright pixels is the object
    c.background = 0;
    c.count = 1;
    c.motion = motion;
    const auto px = render_synth_clip(c, o);
    // The toroidal shift that best maps frame f onto frame f+1 is the motion of that step.
    auto best_shift = [&](int f) {
      std::array<int, 2> best{0, 0};
      double best_diff = 1e300;
      for (int sy = -4; sy <= 4; ++sy)
        for (int sx = -4; sx <= 4; ++sx) {
          double diff = 0;
          for (int y = 0; y < 64; ++y)
            for (int x = 0; x < 64; ++x) {
              const int ox = (x - sx + 64) % 64, oy = (y - sy + 64) % 64;
              diff += std::abs(int(px[((static_cast<size_t>(f + 1) * 64 + y) * 64 + x) * 3]) -
                               int(px[((static_cast<size_t>(f) * 64 + oy) * 64 + ox) * 3]));
            }
          if (diff < best_diff) {
            best_diff = diff;
            best = {sx, sy};
          }
        }
      return best;
    };
    int agree = 0;
    for (int f = 0; f + 1 < 8; ++f) {
      const auto d = best_shift(f);
      const bool ok = motion == 0   ? d[1] < 0 && d[0] == 0
                      : motion == 1 ? d[1] > 0 && d[0] == 0
                      : motion == 2 ? d[0] < 0 && d[1] == 0
                                    : d[0] > 0 && d[1] == 0;
      agree += ok;
    }
    INFO("motion " << synth_motions()[motion]);
    CHECK(agree == 7);
  }
}
