#include <catch2/catch.hpp>

#include <limits>
#include <random>

#include "core/error.hpp"
#include "eval/metrics.hpp"

using namespace harvest::eval;

namespace {
Scores matrix(int64_t rows, int64_t cols, std::vector<float> v) { return Scores{rows, cols, std::move(v)}; }
}  // namespace

TEST_CASE("perfect and reversed rankings", "[eval][metrics]") {
  // 3 captions, 3 videos, caption i describes video i.
  const auto perfect = retrieval_metrics(matrix(3, 3, {0.9f, 0.1f, 0.0f,  //
                                                       0.2f, 0.8f, 0.1f,  //
                                                       0.0f, 0.3f, 0.7f}),
                                         {0, 1, 2});
  CHECK(perfect.t2v.r1 == 100.0);
  CHECK(perfect.v2t.r1 == 100.0);
  CHECK(perfect.t2v.medr == 1.0);
  CHECK(perfect.t2v.meanr == 1.0);

  const auto reversed = retrieval_metrics(matrix(3, 3, {0.0f, 0.5f, 0.9f,  //
                                                        0.1f, 0.2f, 0.8f,  //
                                                        0.9f, 0.8f, 0.1f}),
                                          {0, 1, 2});
  // t2v ranks: caption 0 -> 3, caption 1 -> 2, caption 2 -> 3.
  CHECK(reversed.t2v.r1 == 0.0);
  CHECK(reversed.t2v.r5 == 100.0);
  CHECK(reversed.t2v.medr == 3.0);
  CHECK(reversed.t2v.meanr == Approx(8.0 / 3.0));
  // v2t ranks: video 0 column (0, .1, .9): own caption 0 scores 0 -> rank 3; video 1 column
  // (.5, .2, .8): own .2 -> rank 3; video 2 column (.9, .8, .1): own .1 -> rank 3.
  CHECK(reversed.v2t.meanr == 3.0);
}

TEST_CASE("a non-finite score is refused, never ranked first", "[eval][metrics]") {
  // Comparisons with NaN are false: without the check caption 0 would rank its video first.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const Scores s = matrix(2, 2, {nan, 0.9f,  //
                                 0.1f, 0.8f});
  CHECK_THROWS_WITH(retrieval_metrics(s, {0, 1}), Catch::Contains("score [0, 0] is nan") &&
                                                       Catch::Contains("non-finite"));
  CHECK_THROWS_AS(classification_metrics(matrix(1, 2, {0.1f, std::numeric_limits<float>::infinity()}), {0}),
                  harvest::Error);
  CHECK_THROWS_AS(multiple_choice_accuracy(matrix(1, 2, {nan, nan}), {0}), harvest::Error);
}

TEST_CASE("ties count against the query", "[eval][metrics]") {
  const auto m = retrieval_metrics(matrix(2, 2, {0.5f, 0.5f,  //
                                                 0.3f, 0.3f}),
                                   {0, 1});
  CHECK(m.t2v.r1 == 0.0);  // both captions tie with the other video: rank 2
  CHECK(m.t2v.medr == 2.0);
  CHECK(m.v2t.r1 == 50.0);  // video 0: own 0.5 vs 0.3 -> rank 1; video 1: own 0.3 vs 0.5 -> rank 2
}

TEST_CASE("several captions per video", "[eval][metrics]") {
  // 4 captions: 0, 1 describe video 0; 2, 3 describe video 1.
  const auto m = retrieval_metrics(matrix(4, 2, {0.9f, 0.1f,   //
                                                 0.2f, 0.6f,   // a bad caption of video 0
                                                 0.1f, 0.8f,   //
                                                 0.3f, 0.4f}),
                                   {0, 0, 1, 1});
  // t2v: every caption is a query: ranks 1, 2, 1, 1.
  CHECK(m.t2v.queries == 4);
  CHECK(m.t2v.r1 == 75.0);
  CHECK(m.t2v.meanr == 1.25);
  CHECK(m.t2v.medr == 1.0);
  // v2t: video 0's best caption (0.9) beats every caption of video 1 -> rank 1; video 1's best
  // caption (0.8) is beaten by none of video 0's captions in its column (0.1, 0.6) -> rank 1.
  CHECK(m.v2t.queries == 2);
  CHECK(m.v2t.r1 == 100.0);

  // Now a caption of video 1 outscores video 0's best in video 0's column.
  const auto worse = retrieval_metrics(matrix(4, 2, {0.5f, 0.1f,  //
                                                     0.2f, 0.6f,  //
                                                     0.7f, 0.8f,  //
                                                     0.5f, 0.4f}),
                                       {0, 0, 1, 1});
  // Column 0: own best 0.5; other captions 0.7 and 0.5 (tie) -> rank 3.
  CHECK(worse.v2t.meanr == Approx((3.0 + 1.0) / 2.0));
  CHECK(worse.v2t.medr == 2.0);  // mean of the middle two of (1, 3)
}

TEST_CASE("random embeddings land near chance", "[eval][metrics]") {
  std::mt19937 gen(3);
  std::normal_distribution<float> normal;
  const int64_t n = 400;
  Scores s{n, n, {}};
  for (int64_t i = 0; i < n * n; ++i) s.values.push_back(normal(gen));
  std::vector<int64_t> gt(n);
  for (int64_t i = 0; i < n; ++i) gt[i] = i;
  const auto m = retrieval_metrics(s, gt);
  CHECK(m.t2v.r1 < 2.0);           // chance: 0.25%
  CHECK(m.t2v.r10 < 6.0);          // chance: 2.5%
  CHECK(m.t2v.medr > 150);         // chance: ~200
  CHECK(m.t2v.medr < 250);
  CHECK(m.v2t.meanr == Approx(200).margin(25));
}

TEST_CASE("dual softmax re-scoring fixes a hub video", "[eval][metrics]") {
  // Video 1 is a "hub": every caption likes it. Plain cosine sends caption 0 to video 1.
  const Scores s = matrix(2, 2, {0.50f, 0.55f,  //
                                 0.10f, 0.90f});
  CHECK(retrieval_metrics(s, {0, 1}).t2v.r1 == 50.0);
  const Scores dsl = dual_softmax_for_t2v(s, 10.0);
  CHECK(retrieval_metrics(dsl, {0, 1}).t2v.r1 == 100.0);
  // Each column's prior sums to one: S' / S per column is a softmax.
  CHECK(dsl.at(0, 0) / s.at(0, 0) + dsl.at(1, 0) / s.at(1, 0) == Approx(1.0));
  const Scores v2t = dual_softmax_for_v2t(s, 10.0);
  CHECK(v2t.at(0, 0) / s.at(0, 0) + v2t.at(0, 1) / s.at(0, 1) == Approx(1.0));
}

TEST_CASE("classification: top-1, top-5 and mean per-class accuracy", "[eval][metrics]") {
  // 4 samples, 6 classes. Labels: 0, 0, 0, 1.
  std::vector<float> v = {
      9, 1, 1, 1, 1, 1,  // right
      9, 1, 1, 1, 1, 1,  // right
      1, 9, 8, 7, 6, 5,  // label 0 ranked 6th
      1, 9, 1, 1, 1, 1,  // right
  };
  const auto m = classification_metrics(matrix(4, 6, v), {0, 0, 0, 1});
  CHECK(m.top1 == 75.0);
  CHECK(m.top5 == 75.0);
  CHECK(m.mean_class_top1 == Approx((2.0 / 3.0 + 1.0) / 2.0 * 100.0));
  CHECK(m.classes == 6);
}

TEST_CASE("multiple choice needs the answer strictly on top", "[eval][metrics]") {
  const auto acc = multiple_choice_accuracy(matrix(3, 3, {0.9f, 0.1f, 0.2f,   // right
                                                          0.5f, 0.5f, 0.1f,   // tie: wrong
                                                          0.1f, 0.2f, 0.3f}), // answer 0: wrong
                                            {0, 0, 0});
  CHECK(acc == Approx(100.0 / 3.0));
}

TEST_CASE("shape errors name what is wrong", "[eval][metrics]") {
  CHECK_THROWS_WITH(retrieval_metrics(matrix(2, 2, {1, 2, 3}), {0, 1}), Catch::Contains("3 values for a [2, 2]"));
  CHECK_THROWS_WITH(retrieval_metrics(matrix(2, 2, {1, 2, 3, 4}), {0, 5}),
                    Catch::Contains("caption 1 points at video 5"));
  CHECK_THROWS_WITH(retrieval_metrics(matrix(2, 2, {1, 2, 3, 4}), {0, 0}), Catch::Contains("video 1 has no caption"));
  CHECK_THROWS_WITH(classification_metrics(matrix(1, 2, {1, 2}), {2}), Catch::Contains("label 2"));
}
