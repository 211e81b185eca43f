// Zero-shot metrics, computed exactly as the field defines them (docs/eval.md). Plain C++ on
// row-major float matrices so they are testable without LibTorch (and under sanitizers).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace harvest::eval {

// Row-major [rows, cols] similarities.
struct Scores {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<float> values;
  float at(int64_t r, int64_t c) const { return values[static_cast<size_t>(r * cols + c)]; }
};

struct RankMetrics {
  double r1 = 0, r5 = 0, r10 = 0;  // percent of queries whose rank <= K
  double medr = 0;                 // median 1-based rank (mean of the middle two for an even count)
  double meanr = 0;                // mean 1-based rank
  int64_t queries = 0;
};

struct RetrievalMetrics {
  RankMetrics t2v;
  RankMetrics v2t;
};

// text_video: [Nt, Nv] similarities of every caption to every video; text_to_video[t] is the
// video caption t describes. Every video needs at least one caption.
//  - text-to-video: each caption is a query; its rank is 1 + the number of OTHER videos scoring
//    >= its own video (ties count against the query: pessimistic).
//  - video-to-text: each video is a query over all captions; its rank is the best rank among its
//    captions: 1 + the number of other videos' captions scoring >= its best caption.
RetrievalMetrics retrieval_metrics(const Scores& text_video,
                                   const std::vector<int64_t>& text_to_video);

// Dual-softmax re-scoring (DSL) of [Nt, Nv] similarities with inverse temperature `scale`:
// for text-to-video, S'[t, v] = S[t, v] * softmax_t(scale * S[:, v])[t] (how much video v prefers
// caption t over the other captions); for video-to-text, the softmax runs over videos instead.
Scores dual_softmax_for_t2v(const Scores& text_video, double scale);
Scores dual_softmax_for_v2t(const Scores& text_video, double scale);

struct ClassificationMetrics {
  double top1 = 0, top5 = 0;   // percent
  double mean_class_top1 = 0;  // percent, averaged over the classes that occur in `labels`
  int64_t samples = 0;
  int64_t classes = 0;
};

// class_scores: [N, C]; labels[n] in [0, C). Ties are pessimistic as in retrieval.
ClassificationMetrics classification_metrics(const Scores& class_scores,
                                             const std::vector<int64_t>& labels);

// candidate_scores: [N, K] similarity of each video to its K candidate answers; answer[n] in
// [0, K). A question counts as right only when its answer scores strictly highest.
double multiple_choice_accuracy(const Scores& candidate_scores, const std::vector<int64_t>& answer);

}  // namespace harvest::eval
