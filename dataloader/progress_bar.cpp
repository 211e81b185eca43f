#include "dataloader/progress_bar.hpp"

#include <unistd.h>

#include <algorithm>

namespace harvest::data {

ProgressBar::ProgressBar(std::string label, int64_t total, bool force)
    : label_(std::move(label)),
      total_(std::max<int64_t>(total, 1)),
      enabled_(force || ::isatty(STDERR_FILENO)) {}

ProgressBar::~ProgressBar() {
  if (enabled_ && !finished_) std::fputc('\n', stderr);
}

void ProgressBar::update(int64_t done) {
  done_ = done;
  const double now = clock_.seconds();
  if (now - last_draw_ < 0.1 && done < total_) return;
  last_draw_ = now;
  draw(done);
}

void ProgressBar::finish() {
  if (finished_) return;
  draw(done_);
  if (enabled_) std::fputc('\n', stderr);
  finished_ = true;
}

void ProgressBar::draw(int64_t done) {
  if (!enabled_) return;
  constexpr int kWidth = 30;
  const double elapsed = clock_.seconds();
  const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
  const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : 0.0;
  const int filled = static_cast<int>(kWidth * done / total_);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.append(static_cast<size_t>(kWidth - filled), '.');
  std::fprintf(stderr, "\r%s [%s] %lld/%lld %.1f/s ETA %.0fs   ", label_.c_str(), bar.c_str(),
               static_cast<long long>(done), static_cast<long long>(total_), rate, eta);
  std::fflush(stderr);
}

}  // namespace harvest::data
