// Every class of bad input ends in a BadVideo naming the file and the reason: never a crash or
// hang.
#include <catch2/catch.hpp>
#include <fstream>

#include "dataloader/bad_video.hpp"
#include "dataloader/clip_decoder.hpp"
#include "tests/dataloader/support.hpp"

using namespace harvest;
using namespace harvest::data;

namespace {

ClipOptions small_clip() {
  ClipOptions o;
  o.frames = 4;
  o.out_width = o.out_height = 16;
  o.reader.timeout_s = 20;
  return o;
}

// Runs decode_clip and returns the reason it refused the file (fails the test if it didn't).
BadReason refusal(const std::string& path, ClipOptions opts = small_clip()) {
  SampleRng rng(3);
  try {
    decode_clip(path, opts, rng);
  } catch (const BadVideo& e) {
    INFO(e.what());
    CHECK(std::string(e.what()).find(path) != std::string::npos);
    CHECK(std::string(e.what()).find(to_string(e.reason())) == 0);
    return e.reason();
  }
  FAIL("decode_clip accepted " << path);
  return BadReason::Missing;
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE("bad video files are refused with a reason", "[dataloader]") {
  test::TempDir dir;
  SECTION("missing") {
    CHECK(refusal(dir.file("nope.mp4")) == BadReason::Missing);
  }
  SECTION("zero bytes") {
    write_bytes(dir.file("empty.mp4"), "");
    CHECK(refusal(dir.file("empty.mp4")) == BadReason::Empty);
  }
  SECTION("a playlist naming another file opens nothing but itself") {
    // An HLS playlist (.m3u8) whose segment is a real, decodable video: FFmpeg would open it.
    const auto v = test::ffmpeg(test::ramp_source(2) + " -c:v libx264 -f mpegts", dir.file("secret.ts"));
    write_bytes(dir.file("list.m3u8"), "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n" + v +
                                           "\n#EXT-X-ENDLIST\n");
    CHECK(refusal(dir.file("list.m3u8")) == BadReason::Unreadable);
    write_bytes(dir.file("list.ffconcat"), "ffconcat version 1.0\nfile '" + v + "'\n");
    CHECK(refusal(dir.file("list.ffconcat")) == BadReason::Unreadable);
  }
  SECTION("random bytes") {
    std::string junk(4096, '\0');
    for (size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<char>((i * 7919 + 13) % 251);
    write_bytes(dir.file("junk.mp4"), junk);
    CHECK(refusal(dir.file("junk.mp4")) == BadReason::Unreadable);
  }
  SECTION("truncated before the index (moov at the end)") {
    const auto v = test::ffmpeg(test::ramp_source(3) + " -c:v libx264", dir.file("full.mp4"));
    const auto bytes = read_bytes(v);
    write_bytes(dir.file("cut.mp4"), bytes.substr(0, bytes.size() / 2));
    CHECK(refusal(dir.file("cut.mp4")) == BadReason::Unreadable);
  }
  SECTION("truncated data after the index (faststart)") {
    // Noise keeps the frames large so that cutting the file removes most of them.
    const auto v = test::ffmpeg(
        "-f lavfi -i \"nullsrc=s=64x48:r=10:d=3,geq=random(1)*255:128:128\" -c:v libx264 -crf 10 "
        "-movflags +faststart",
        dir.file("full_fast.mp4"));
    const auto bytes = read_bytes(v);
    write_bytes(dir.file("cut_fast.mp4"), bytes.substr(0, bytes.size() * 2 / 5));
    CHECK(refusal(dir.file("cut_fast.mp4")) == BadReason::Truncated);
  }
  SECTION("audio only") {
    const auto v = test::ffmpeg("-f lavfi -i sine=d=1 -c:a aac", dir.file("audio.m4a"));
    CHECK(refusal(v) == BadReason::NoVideoStream);
  }
  SECTION("a video stream with no frames") {
    const auto v = test::ffmpeg("-f lavfi -i color=s=64x48:r=10:d=1 -frames:v 0 -c:v libx264",
                                dir.file("zero.mkv"));
    const auto reason = refusal(v);
    CHECK((reason == BadReason::ZeroFrames || reason == BadReason::Unreadable));
  }
  SECTION("over the resolution limit") {
    const auto v = test::ffmpeg(test::ramp_source(1) + " -c:v libx264", dir.file("big.mp4"));
    ClipOptions opts = small_clip();
    opts.reader.max_resolution = 32;
    CHECK(refusal(v, opts) == BadReason::TooLarge);
  }
  SECTION("a decode deadline in the past") {
    const auto v = test::ffmpeg(test::ramp_source(1) + " -c:v libx264", dir.file("slow.mp4"));
    ClipOptions opts = small_clip();
    opts.reader.timeout_s = 0.0;
    CHECK(refusal(v, opts) == BadReason::Timeout);
  }
  SECTION("a segment past the end") {
    const auto v = test::ffmpeg(test::ramp_source(1) + " -c:v libx264", dir.file("seg.mp4"));
    SampleRng rng(1);
    CHECK_THROWS_AS(decode_clip(v, small_clip(), rng, 5.0, 6.0), BadVideo);
  }
}

TEST_CASE("corrupt bytes inside a stream never crash the decoder", "[dataloader]") {
  test::TempDir dir;
  const auto v = test::ffmpeg(
      "-f lavfi -i \"nullsrc=s=64x48:r=10:d=3,geq=random(1)*255:128:128\" -c:v libx264",
      dir.file("ok.mp4"));
  const auto bytes = read_bytes(v);
  for (int variant = 0; variant < 4; ++variant) {
    std::string damaged = bytes;
    const size_t from = damaged.size() * (2 + variant) / 10, to = from + damaged.size() / 8;
    for (size_t i = from; i < to && i < damaged.size(); ++i)
      damaged[i] = static_cast<char>((i * 31 + variant) & 0xff);
    const auto path = dir.file("damaged" + std::to_string(variant) + ".mp4");
    write_bytes(path, damaged);
    SampleRng rng(1);
    try {
      const Clip clip = decode_clip(path, small_clip(), rng);
      CHECK(clip.pixels.size() == 4u * 16 * 16 * 3);  // concealed: a clip of the right shape
    } catch (const BadVideo& e) {
      CHECK(std::string(e.what()).find(path) != std::string::npos);
    }
  }
}
