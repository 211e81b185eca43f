// Frame times and crops: the segment rule, determinism per seed, RandomResizedCrop bounds.
#include <catch2/catch.hpp>

#include "dataloader/frame_sampler.hpp"

using namespace harvest::data;

TEST_CASE("segment sampling", "[dataloader]") {
  SampleRng rng(1);
  SECTION("middle: the centre of each of T equal segments") {
    const auto t = sample_times({2.0, 6.0}, 4, Sampling::Middle, 0.0, rng);
    REQUIRE(t == std::vector<double>{2.5, 3.5, 4.5, 5.5});
  }
  SECTION("random: one time inside each segment, same seed same times") {
    SampleRng a(9), b(9), c(10);
    const auto ta = sample_times({0.0, 8.0}, 8, Sampling::Random, 0.0, a);
    const auto tb = sample_times({0.0, 8.0}, 8, Sampling::Random, 0.0, b);
    const auto tc = sample_times({0.0, 8.0}, 8, Sampling::Random, 0.0, c);
    CHECK(ta == tb);
    CHECK(ta != tc);
    for (size_t i = 0; i < ta.size(); ++i) {
      CHECK(ta[i] >= static_cast<double>(i));
      CHECK(ta[i] < static_cast<double>(i + 1));
    }
  }
  SECTION("fixed fps: 1/fps apart, clamped at the end of a short span") {
    const auto t = sample_times({0.0, 0.5}, 4, Sampling::Middle, 4.0, rng);
    REQUIRE(t == std::vector<double>{0.0, 0.25, 0.5, 0.5});
  }
  SECTION("short videos: all frames, then the last repeated") {
    CHECK(short_video_indices(3, 6) == std::vector<int64_t>{0, 1, 2, 2, 2, 2});
  }
  SECTION("rejects T = 0") {
    CHECK_THROWS(sample_times({0, 1}, 0, Sampling::Middle, 0, rng));
  }
}

TEST_CASE("sample streams differ by seed, epoch and index", "[dataloader]") {
  CHECK(SampleRng::for_sample(1, 0, 5).next() == SampleRng::for_sample(1, 0, 5).next());
  CHECK(SampleRng::for_sample(1, 0, 5).next() != SampleRng::for_sample(1, 1, 5).next());
  CHECK(SampleRng::for_sample(1, 0, 5).next() != SampleRng::for_sample(1, 0, 6).next());
  CHECK(SampleRng::for_sample(1, 0, 5).next() != SampleRng::for_sample(2, 0, 5).next());
}

TEST_CASE("RandomResizedCrop stays inside the picture with the requested area and ratio",
          "[dataloader]") {
  SampleRng rng(4);
  CropOptions o;
  double min_area = 1, max_area = 0;
  for (int i = 0; i < 2000; ++i) {
    const CropRect c = random_resized_crop(320, 240, o, rng);
    REQUIRE(c.x >= 0);
    REQUIRE(c.y >= 0);
    REQUIRE(c.x + c.w <= 320);
    REQUIRE(c.y + c.h <= 240);
    const double area = static_cast<double>(c.w) * c.h / (320.0 * 240.0);
    min_area = std::min(min_area, area);
    max_area = std::max(max_area, area);
    const double ratio = static_cast<double>(c.w) / c.h;
    CHECK(ratio >= 0.75 * 0.97);
    CHECK(ratio <= 4.0 / 3.0 * 1.03);
  }
  CHECK(min_area >= 0.5 * 0.97);
  CHECK(min_area < 0.55);
  CHECK(max_area > 0.9);
  SECTION("an extreme aspect ratio falls back to a centred crop") {
    const CropRect c = random_resized_crop(1000, 10, CropOptions{0.99, 1.0, 0.75, 4.0 / 3.0}, rng);
    CHECK(c.h == 10);
    CHECK(c.w == 13);
    CHECK(c.x == (1000 - 13) / 2);
  }
}
