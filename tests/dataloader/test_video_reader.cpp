// Frame choice by presentation time against PyAV, on files the ffmpeg CLI makes here:
// CFR, B-frames (with seeks), VFR, MPEG-TS (non-zero start), raw H.264 (no timestamps),
// rotation, odd sizes, 10-bit and 4:4:4, clip segments.
#include <catch2/catch.hpp>

#include <cstring>
#include <cmath>
#include <numeric>

#include "dataloader/clip_decoder.hpp"
#include "dataloader/frame_scaler.hpp"
#include "dataloader/video_reader.hpp"
#include "tests/dataloader/support.hpp"

using namespace harvest;
using namespace harvest::data;

namespace {

double frame_mean(const AVFrame& frame, int rotation = 0) {
  FrameScaler scaler;
  const int w = rotation % 180 ? frame.height : frame.width,
            h = rotation % 180 ? frame.width : frame.height;
  std::vector<uint8_t> rgb(static_cast<size_t>(w) * h * 3);
  scaler.convert(frame, CropRect{0, 0, w, h}, rotation, false, w, h, rgb.data(), "test");
  return std::accumulate(rgb.begin(), rgb.end(), 0.0) / static_cast<double>(rgb.size());
}

// The frame on screen at t: the last reference frame with time <= t (the first before any).
size_t expected_index(const std::vector<test::RefFrame>& ref, double t) {
  size_t best = 0;
  for (size_t i = 0; i < ref.size(); ++i)
    if (*ref[i].t <= t + 1e-9) best = i;
  return best;
}

std::vector<double> probe_times(double duration) {
  std::vector<double> times;
  for (int i = 0; i * 0.05 < duration - 0.01; ++i)
    times.push_back(i * 0.05);  // frame edges and midpoints
  times.push_back(duration - 0.001);
  return times;
}

void check_against_reference(const std::string& video, double duration, double seek_threshold,
                             std::vector<double> times = {}) {
  const auto ref = test::reference_frames(video);
  REQUIRE(ref.size() >= 10);
  for (const auto& f : ref) REQUIRE(f.t.has_value());
  ReaderOptions opts;
  opts.seek_threshold_s = seek_threshold;
  VideoReader reader(video, opts);
  if (times.empty()) times = probe_times(duration);
  const auto frames = reader.frames_at(times);
  REQUIRE(frames.size() == times.size());
  for (size_t i = 0; i < times.size(); ++i) {
    const auto& want = ref[expected_index(ref, times[i])];
    INFO(video << " t=" << times[i] << " want frame at " << *want.t << " got "
               << reader.time_of(*frames[i]));
    CHECK(reader.time_of(*frames[i]) == Approx(*want.t).margin(1e-6));
    CHECK(frame_mean(*frames[i]) == Approx(want.mean).margin(2.0));
  }
}

}  // namespace

TEST_CASE("the frame for time t is the last frame with pts <= t", "[dataloader]") {
  test::TempDir dir;
  SECTION("constant frame rate, no B-frames") {
    const auto v =
        test::ffmpeg(test::ramp_source(3) + " -c:v libx264 -bf 0 -g 10", dir.file("cfr.mp4"));
    check_against_reference(v, 3.0, 100.0);
  }
  SECTION("B-frames with pyramid reordering, decoded forward and with seeks between targets") {
    const auto v = test::ffmpeg(
        test::ramp_source(3) + " -c:v libx264 -bf 3 -g 12 -x264-params b-pyramid=normal",
        dir.file("bframes.mp4"));
    check_against_reference(v, 3.0, 100.0);
    check_against_reference(v, 3.0, 0.2);
  }
  SECTION("sparse targets: frames far before a target may be skipped, never the one shown") {
    const auto v =
        test::ffmpeg(test::ramp_source(8) + " -c:v libx264 -bf 3 -g 250", dir.file("long_b.mp4"));
    const std::vector<double> sparse = {0.05, 2.45, 2.5, 4.97, 7.31, 7.99};
    check_against_reference(v, 8.0, 100.0, sparse);
    check_against_reference(v, 8.0, 1.0, sparse);
  }
  SECTION("segment middles with short GOPs: jumps to the keyframe before each target") {
    // 8 s at 10 fps, a keyframe every 6 frames; the targets are 1 s apart, so the frames
    // between a target and the next keyframe before the following target are never decoded.
    const std::vector<double> middles = {0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5};
    const std::vector<double> uneven = {0.04, 0.61, 0.62, 1.99, 3.3, 5.05, 7.9, 7.99};
    for (const char* name : {"short_gop.mp4", "short_gop.mkv"}) {
      const auto v = test::ffmpeg(test::ramp_source(8) +
                                      " -c:v libx264 -bf 3 -g 6 -x264-params b-pyramid=normal",
                                  dir.file(name));
      check_against_reference(v, 8.0, 100.0, middles);
      check_against_reference(v, 8.0, 100.0, uneven);
      ReaderOptions opts;
      VideoReader reader(v, opts);
      const auto drained = reader.frames_at(middles);
      INFO(name << " decoded " << reader.decoded_frames() << " of 80 frames");
      CHECK(reader.decoded_frames() < 50);
      // The early drain (the decoder is drained for a target whose successor needs a seek
      // anyway) feeds fewer packets and changes no picture.
      opts.early_drain = false;
      VideoReader plain(v, opts);
      const auto fed = plain.frames_at(middles);
      INFO("packets sent: " << reader.sent_packets() << " with early drain, "
                            << plain.sent_packets() << " without");
      CHECK(reader.sent_packets() < plain.sent_packets());
      REQUIRE(drained.size() == fed.size());
      for (size_t i = 0; i < fed.size(); ++i) {
        CHECK(drained[i]->pts == fed[i]->pts);
        for (int plane = 0; plane < 3; ++plane)
          for (int y = 0; y < (plane ? fed[i]->height / 2 : fed[i]->height); ++y)
            CHECK(std::memcmp(drained[i]->data[plane] + y * drained[i]->linesize[plane],
                              fed[i]->data[plane] + y * fed[i]->linesize[plane],
                              static_cast<size_t>(plane ? fed[i]->width / 2 : fed[i]->width)) == 0);
      }
    }
    const auto vp9 = test::ffmpeg(test::ramp_source(8) + " -c:v libvpx-vp9 -g 6 -deadline realtime",
                                  dir.file("short_gop.webm"));
    check_against_reference(vp9, 8.0, 100.0, middles);
    check_against_reference(vp9, 8.0, 100.0, uneven);
  }
  SECTION("variable frame rate") {
    const auto v =
        test::ffmpeg(test::ramp_source(3) +
                         " -vf \"setpts='if(lt(N,10),N*0.05,0.5+(N-10)*0.13)/TB'\" -fps_mode vfr"
                         " -c:v libx264 -bf 2 -video_track_timescale 1000",
                     dir.file("vfr.mp4"));
    check_against_reference(v, 2.9, 100.0);
    check_against_reference(v, 2.9, 0.3);
  }
  SECTION("a 3 s gap right after B-frames: a target in the gap after an early drain") {
    // 10 fps, frames 12.. shifted 3 s later, fixed B-frame runs: frames 9-11 are B-frames that
    // reference frame 12 (at 4.2 s). A target at 0.95 s followed by one at 3.5 s (a seek away)
    // drains the decoder after frame 9's packet, which leaves frame 12 as the next frame out and
    // frames 10 and 11 never fed: the frame for 3.5 s is 11 (1.1 s), not 9 and not 12.
    const auto v = test::ffmpeg(
        test::ramp_source(3) +
            " -vf \"setpts='if(gte(N,12),N*0.1+3,N*0.1)/TB'\" -fps_mode vfr"
            " -c:v libx264 -bf 3 -x264-params b-adapt=0:b-pyramid=none:keyint=100:scenecut=0"
            " -video_track_timescale 1000",
        dir.file("gap.mp4"));
    check_against_reference(v, 5.9, 2.0, {0.95, 3.5});
    check_against_reference(v, 5.9, 2.0, {0.85, 3.5, 4.25});
    check_against_reference(v, 5.9, 2.0, {1.05, 3.9});
  }
  SECTION("MPEG-TS with a non-zero start time") {
    const auto v =
        test::ffmpeg(test::ramp_source(3) + " -c:v libx264 -bf 2 -g 10", dir.file("cfr.ts"));
    check_against_reference(v, 3.0, 100.0);
    check_against_reference(v, 3.0, 0.5);
  }
}

TEST_CASE("a raw H.264 stream without timestamps is timed by its frame rate", "[dataloader]") {
  test::TempDir dir;
  const auto v =
      test::ffmpeg(test::ramp_source(3) + " -c:v libx264 -bf 0 -f h264", dir.file("raw.h264"));
  const auto ref = test::reference_frames(v);
  REQUIRE(ref.size() == 30);
  VideoReader reader(v, ReaderOptions{});
  CHECK(reader.info().frame_count == 30);
  CHECK(reader.info().duration == Approx(3.0).margin(0.11));
  const std::vector<double> times = {0.0, 0.05, 0.51, 1.0, 2.25, 2.95};
  const auto frames = reader.frames_at(times);
  for (size_t i = 0; i < times.size(); ++i) {
    const auto want = static_cast<size_t>(std::floor(times[i] * 10 + 1e-9));
    INFO("t=" << times[i]);
    CHECK(frame_mean(*frames[i]) == Approx(ref[want].mean).margin(2.0));
  }
}

TEST_CASE("rotation metadata is applied like the ffmpeg CLI's autorotate", "[dataloader]") {
  test::TempDir dir;
  // A white top-left quarter makes every orientation distinguishable.
  const auto src = test::ffmpeg(
      "-f lavfi -i "
      "\"color=c=black:s=64x48:r=10:d=1,format=yuv420p,drawbox=x=0:y=0:w=32:h=24:c=white:t=fill\""
      " -c:v libx264",
      dir.file("src.mp4"));
  for (int angle : {90, 180, 270}) {
    const auto v =
        test::ffmpeg("-i '" + src + "' -c copy -metadata:s:v:0 rotate=" + std::to_string(angle),
                     dir.file("rot" + std::to_string(angle) + ".mp4"));
    ClipOptions opts;
    opts.frames = 2;
    VideoReader probe(v, ReaderOptions{});
    opts.out_width = probe.info().display_width() / 2;
    opts.out_height = probe.info().display_height() / 2;
    SampleRng rng(1);
    const Clip clip = decode_clip(v, opts, rng);
    const auto ref =
        test::run("ffmpeg -nostdin -v error -i '" + v +
                  "' -frames:v 1 -vf scale=" + std::to_string(opts.out_width) + ":" +
                  std::to_string(opts.out_height) + ":flags=bicubic -f rawvideo -pix_fmt rgb24 -");
    REQUIRE(ref.exit_code == 0);
    REQUIRE(ref.output.size() == static_cast<size_t>(opts.out_width * opts.out_height * 3));
    double diff = 0;
    for (size_t i = 0; i < ref.output.size(); ++i)
      diff += std::abs(static_cast<int>(static_cast<uint8_t>(ref.output[i])) -
                       static_cast<int>(clip.pixels[i]));
    INFO("rotate=" << angle << " display " << opts.out_width << "x" << opts.out_height);
    CHECK(diff / static_cast<double>(ref.output.size()) < 8.0);
  }
}

TEST_CASE("odd sizes, 10-bit and 4:4:4 input decode to the reference picture", "[dataloader]") {
  test::TempDir dir;
  struct Case {
    const char* name;
    int w, h;
    const char* pix;
  };
  for (const Case& c :
       {Case{"odd444.mp4", 65, 49, "yuv444p"}, Case{"ten.mp4", 66, 50, "yuv420p10le"},
        Case{"ten444.mkv", 63, 47, "yuv444p10le"}}) {
    const auto v =
        test::ffmpeg(test::ramp_source(2, c.w, c.h, c.pix) + " -c:v libx264 -pix_fmt " + c.pix,
                     dir.file(c.name));
    const auto ref = test::reference_frames(v);
    VideoReader reader(v, ReaderOptions{});
    CHECK(reader.info().width == c.w);
    CHECK(reader.info().height == c.h);
    const auto frames = reader.frames_at({0.55, 1.25});
    INFO(c.name);
    CHECK(frame_mean(*frames[0]) == Approx(ref[5].mean).margin(2.0));
    CHECK(frame_mean(*frames[1]) == Approx(ref[12].mean).margin(2.0));
  }
}

TEST_CASE("decode_clip samples segment middles, segments and short videos", "[dataloader]") {
  test::TempDir dir;
  const auto v =
      test::ffmpeg(test::ramp_source(3) + " -c:v libx264 -bf 2 -g 10", dir.file("clip.mp4"));
  const auto ref = test::reference_frames(v);
  ClipOptions opts;
  opts.frames = 4;
  opts.out_width = opts.out_height = 8;
  SampleRng rng(7);
  auto mean_of = [](const Clip& clip, int64_t i) {
    const size_t n = static_cast<size_t>(clip.width) * clip.height * 3;
    return std::accumulate(clip.pixels.begin() + i * n, clip.pixels.begin() + (i + 1) * n, 0.0) / n;
  };

  SECTION("eval: the middle of each of T equal segments") {
    const Clip clip =
        decode_clip(v, opts, rng);  // middles 0.375 1.125 1.875 2.625 -> frames 3 11 18 26
    REQUIRE(clip.pixels.size() == 4u * 8 * 8 * 3);
    const int want[] = {3, 11, 18, 26};
    for (int i = 0; i < 4; ++i) CHECK(mean_of(clip, i) == Approx(ref[want[i]].mean).margin(2.0));
  }
  SECTION("a start/end segment inside the video, reached by seeking") {
    opts.reader.seek_threshold_s = 0.2;
    const Clip clip = decode_clip(v, opts, rng, 1.0, 2.0);  // 1.125 1.375 1.625 1.875
    const int want[] = {11, 13, 16, 18};
    for (int i = 0; i < 4; ++i) CHECK(mean_of(clip, i) == Approx(ref[want[i]].mean).margin(2.0));
  }
  SECTION("fewer frames than T: every frame, then the last repeated") {
    const auto short_v =
        test::ffmpeg(test::ramp_source(0.3) + " -c:v libx264", dir.file("short.mp4"));
    const auto short_ref = test::reference_frames(short_v);
    REQUIRE(short_ref.size() == 3);
    opts.frames = 5;
    const Clip clip = decode_clip(short_v, opts, rng);
    const int want[] = {0, 1, 2, 2, 2};
    for (int i = 0; i < 5; ++i)
      CHECK(mean_of(clip, i) == Approx(short_ref[want[i]].mean).margin(2.0));
  }
  SECTION("fixed-fps sampling takes frames 1/fps apart around the centre") {
    opts.sampling_fps = 5.0;  // window 0.6 s centred in 3 s: 1.2 1.4 1.6 1.8
    const Clip clip = decode_clip(v, opts, rng);
    const int want[] = {12, 14, 16, 18};
    for (int i = 0; i < 4; ++i) CHECK(mean_of(clip, i) == Approx(ref[want[i]].mean).margin(2.0));
  }
  SECTION("train augmentation is a pure function of the seed") {
    opts.sampling = Sampling::Random;
    opts.train_augment = true;
    SampleRng a(11), b(11), c(12);
    const Clip ca = decode_clip(v, opts, a), cb = decode_clip(v, opts, b),
               cc = decode_clip(v, opts, c);
    CHECK(ca.pixels == cb.pixels);
    CHECK(ca.times == cb.times);
    CHECK((ca.times != cc.times || ca.crop.x != cc.crop.x || ca.crop.w != cc.crop.w));
    for (size_t i = 0; i < ca.times.size(); ++i) {  // one random time inside each segment
      CHECK(ca.times[i] >= 0.75 * static_cast<double>(i) - 0.1 - 1e-9);
      CHECK(ca.times[i] < 0.75 * static_cast<double>(i + 1));
    }
  }
}
