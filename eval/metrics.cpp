#include "eval/metrics.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"

namespace harvest::eval {
namespace {

void check_shape(const Scores& s, const char* what) {
  HARVEST_REQUIRE(
      s.rows >= 0 && s.cols >= 0 && static_cast<int64_t>(s.values.size()) == s.rows * s.cols, Usage,
      what, ": ", s.values.size(), " values for a [", s.rows, ", ", s.cols, "] matrix");
  // Every comparison with NaN is false, so a NaN score would rank first (R@1 = 100 for a
  // diverged model): refuse instead.
  const auto bad = std::find_if(s.values.begin(), s.values.end(), [](float v) { return !std::isfinite(v); });
  if (bad != s.values.end()) {
    const int64_t at = bad - s.values.begin();
    fail(ErrorKind::Runtime, what, ": score [", at / std::max<int64_t>(s.cols, 1), ", ",
         at % std::max<int64_t>(s.cols, 1), "] is ", *bad, "; non-finite scores cannot be ranked");
  }
}

RankMetrics summarize(std::vector<int64_t> ranks) {
  RankMetrics m;
  m.queries = static_cast<int64_t>(ranks.size());
  if (ranks.empty()) return m;
  const double n = static_cast<double>(ranks.size());
  auto pct = [&](int64_t k) {
    return 100.0 *
           static_cast<double>(
               std::count_if(ranks.begin(), ranks.end(), [k](int64_t r) { return r <= k; })) /
           n;
  };
  m.r1 = pct(1);
  m.r5 = pct(5);
  m.r10 = pct(10);
  double sum = 0;
  for (int64_t r : ranks) sum += static_cast<double>(r);
  m.meanr = sum / n;
  std::sort(ranks.begin(), ranks.end());
  const size_t mid = ranks.size() / 2;
  m.medr = ranks.size() % 2 ? static_cast<double>(ranks[mid])
                            : 0.5 * static_cast<double>(ranks[mid - 1] + ranks[mid]);
  return m;
}

// 1 + how many of the `count` candidates that are not skipped score >= `score`.
template <class Skip, class Value>
int64_t pessimistic_rank(float score, int64_t count, Skip skip, Value value) {
  int64_t above = 0;
  for (int64_t i = 0; i < count; ++i)
    if (!skip(i) && value(i) >= score) ++above;
  return 1 + above;
}

}  // namespace

RetrievalMetrics retrieval_metrics(const Scores& s, const std::vector<int64_t>& text_to_video) {
  check_shape(s, "retrieval scores");
  HARVEST_REQUIRE(static_cast<int64_t>(text_to_video.size()) == s.rows, Usage,
                  "retrieval: ", text_to_video.size(), " caption->video entries for ", s.rows,
                  " captions");
  std::vector<std::vector<int64_t>> captions_of(static_cast<size_t>(s.cols));
  for (int64_t t = 0; t < s.rows; ++t) {
    const int64_t v = text_to_video[static_cast<size_t>(t)];
    HARVEST_REQUIRE(v >= 0 && v < s.cols, Usage, "retrieval: caption ", t, " points at video ", v,
                    " outside [0, ", s.cols, ")");
    captions_of[static_cast<size_t>(v)].push_back(t);
  }
  for (int64_t v = 0; v < s.cols; ++v)
    HARVEST_REQUIRE(!captions_of[static_cast<size_t>(v)].empty(), Usage, "retrieval: video ", v,
                    " has no caption");

  std::vector<int64_t> t2v;
  t2v.reserve(static_cast<size_t>(s.rows));
  for (int64_t t = 0; t < s.rows; ++t) {
    const int64_t own = text_to_video[static_cast<size_t>(t)];
    t2v.push_back(pessimistic_rank(
        s.at(t, own), s.cols, [own](int64_t v) { return v == own; },
        [&](int64_t v) { return s.at(t, v); }));
  }
  std::vector<int64_t> v2t;
  v2t.reserve(static_cast<size_t>(s.cols));
  for (int64_t v = 0; v < s.cols; ++v) {
    float best = -INFINITY;
    for (int64_t c : captions_of[static_cast<size_t>(v)]) best = std::max(best, s.at(c, v));
    v2t.push_back(pessimistic_rank(
        best, s.rows, [&](int64_t t) { return text_to_video[static_cast<size_t>(t)] == v; },
        [&](int64_t t) { return s.at(t, v); }));
  }
  return RetrievalMetrics{summarize(std::move(t2v)), summarize(std::move(v2t))};
}

namespace {
// S * softmax(scale * S) along `dim` (0: over rows for each column, 1: over columns for each row).
Scores dual_softmax(const Scores& s, double scale, int dim) {
  check_shape(s, "dual-softmax scores");
  Scores out = s;
  const int64_t outer = dim == 0 ? s.cols : s.rows;
  const int64_t inner = dim == 0 ? s.rows : s.cols;
  for (int64_t o = 0; o < outer; ++o) {
    auto value = [&](int64_t i) { return dim == 0 ? s.at(i, o) : s.at(o, i); };
    double peak = -INFINITY;
    for (int64_t i = 0; i < inner; ++i) peak = std::max(peak, scale * value(i));
    double total = 0;
    for (int64_t i = 0; i < inner; ++i) total += std::exp(scale * value(i) - peak);
    for (int64_t i = 0; i < inner; ++i) {
      const double prior = std::exp(scale * value(i) - peak) / total;
      const int64_t r = dim == 0 ? i : o, c = dim == 0 ? o : i;
      out.values[static_cast<size_t>(r * s.cols + c)] = static_cast<float>(value(i) * prior);
    }
  }
  return out;
}
}  // namespace

Scores dual_softmax_for_t2v(const Scores& s, double scale) {
  return dual_softmax(s, scale, 0);
}
Scores dual_softmax_for_v2t(const Scores& s, double scale) {
  return dual_softmax(s, scale, 1);
}

ClassificationMetrics classification_metrics(const Scores& s, const std::vector<int64_t>& labels) {
  check_shape(s, "classification scores");
  HARVEST_REQUIRE(static_cast<int64_t>(labels.size()) == s.rows, Usage,
                  "classification: ", labels.size(), " labels for ", s.rows, " samples");
  ClassificationMetrics m;
  m.samples = s.rows;
  m.classes = s.cols;
  if (s.rows == 0) return m;
  std::vector<int64_t> hits_per_class(static_cast<size_t>(s.cols), 0),
      count_per_class(static_cast<size_t>(s.cols), 0);
  int64_t top1 = 0, top5 = 0;
  for (int64_t n = 0; n < s.rows; ++n) {
    const int64_t label = labels[static_cast<size_t>(n)];
    HARVEST_REQUIRE(label >= 0 && label < s.cols, Usage, "classification: sample ", n,
                    " has label ", label, " outside [0, ", s.cols, ")");
    const int64_t rank = pessimistic_rank(
        s.at(n, label), s.cols, [label](int64_t c) { return c == label; },
        [&](int64_t c) { return s.at(n, c); });
    top1 += rank <= 1;
    top5 += rank <= 5;
    ++count_per_class[static_cast<size_t>(label)];
    hits_per_class[static_cast<size_t>(label)] += rank <= 1;
  }
  m.top1 = 100.0 * static_cast<double>(top1) / static_cast<double>(s.rows);
  m.top5 = 100.0 * static_cast<double>(top5) / static_cast<double>(s.rows);
  double sum = 0;
  int64_t present = 0;
  for (int64_t c = 0; c < s.cols; ++c) {
    if (!count_per_class[static_cast<size_t>(c)]) continue;
    sum += static_cast<double>(hits_per_class[static_cast<size_t>(c)]) /
           static_cast<double>(count_per_class[static_cast<size_t>(c)]);
    ++present;
  }
  m.mean_class_top1 = 100.0 * sum / static_cast<double>(present);
  return m;
}

double multiple_choice_accuracy(const Scores& s, const std::vector<int64_t>& answer) {
  check_shape(s, "multiple-choice scores");
  HARVEST_REQUIRE(static_cast<int64_t>(answer.size()) == s.rows, Usage,
                  "multiple choice: ", answer.size(), " answers for ", s.rows, " questions");
  if (s.rows == 0) return 0;
  int64_t right = 0;
  for (int64_t n = 0; n < s.rows; ++n) {
    const int64_t a = answer[static_cast<size_t>(n)];
    HARVEST_REQUIRE(a >= 0 && a < s.cols, Usage, "multiple choice: question ", n, " has answer ", a,
                    " outside [0, ", s.cols, ")");
    right += pessimistic_rank(
                 s.at(n, a), s.cols, [a](int64_t c) { return c == a; },
                 [&](int64_t c) { return s.at(n, c); }) == 1;
  }
  return 100.0 * static_cast<double>(right) / static_cast<double>(s.rows);
}

}  // namespace harvest::eval
