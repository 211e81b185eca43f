// Bad samples are skipped by rule (the next sample of the shard), counted per reason.
#include <catch2/catch.hpp>
#include <fstream>
#include <set>

#include "dataloader/clip_source.hpp"
#include "tests/dataloader/support.hpp"

using namespace harvest;
using namespace harvest::data;

TEST_CASE("bad samples are skipped by rule and counted per reason", "[dataloader]") {
  test::TempDir dir;
  test::ffmpeg(test::ramp_source(1) + " -c:v libx264", dir.file("good.mp4"));
  std::ofstream(dir.file("empty.mp4")).flush();
  test::ffmpeg("-f lavfi -i sine=d=1 -c:a aac", dir.file("audio.m4a"));
  {
    std::ofstream m(dir.file("m.jsonl"));
    const char* videos[] = {"good.mp4", "missing.mp4", "good.mp4", "empty.mp4",
                            "good.mp4", "audio.m4a",   "good.mp4"};
    for (const char* v : videos) m << "{\"video\": \"" << v << "\", \"caption\": \"c\"}\n";
    m << "{\"video\": \"good.mp4\", \"caption\": \"late\", \"start\": 5, \"end\": 6}\n";
  }
  const Manifest manifest = load_manifest(dir.file("m.jsonl"));
  ClipOptions opts;
  opts.frames = 2;
  opts.out_width = opts.out_height = 8;
  std::set<uint64_t> delivered;
  SkipCounts total;
  for (int rank = 0; rank < 2; ++rank) {
    EpochSampler sampler(manifest.entries.size(), 1, 2, rank);
    ClipSource source(manifest, opts, 1, sampler);
    while (auto s = source.next()) {
      CHECK(s->entry->video == "good.mp4");
      CHECK(s->clip.pixels.size() == 2u * 8 * 8 * 3);
      CHECK(delivered.insert(s->index).second);  // never twice
    }
    for (int r = 0; r < kBadReasonCount; ++r) total.by_reason[r] += source.skips().by_reason[r];
  }
  CHECK(delivered == std::set<uint64_t>{0, 2, 4, 6});
  CHECK(total.total() == 4);
  CHECK(total.by_reason[static_cast<size_t>(BadReason::Missing)] == 1);
  CHECK(total.by_reason[static_cast<size_t>(BadReason::Empty)] == 1);
  CHECK(total.by_reason[static_cast<size_t>(BadReason::NoVideoStream)] == 1);
  CHECK(total.by_reason[static_cast<size_t>(BadReason::BadSegment)] == 1);
}
