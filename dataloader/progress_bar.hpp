// A console progress bar with rate and ETA for long CLI jobs (synthesis, import), redrawn in place
// on stderr at most ~10 times a second; silent when stderr is not a terminal unless forced.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "core/time.hpp"

namespace harvest::data {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, bool force = false);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  void update(int64_t done);
  void finish();

 private:
  void draw(int64_t done);
  std::string label_;
  int64_t total_;
  bool enabled_;
  bool finished_ = false;
  Stopwatch clock_;
  double last_draw_ = -1.0;
  int64_t done_ = 0;
};

}  // namespace harvest::data
