// FrameScaler: one swscale pass per frame from the decoder's pixel format straight to RGB24 at the
// output size. Cropping moves the source pointers (no full-frame conversion); rotation and flip are
// applied while copying the small output picture into place.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dataloader/av_ptr.hpp"
#include "dataloader/frame_sampler.hpp"

namespace harvest::data {

class FrameScaler {
 public:
  // `crop` is in display coordinates (after `rotation`, clockwise degrees); the result is
  // out_w x out_h RGB24, rows packed, written to dst.
  void convert(const AVFrame& frame, CropRect crop, int rotation, bool flip, int out_w, int out_h,
               uint8_t* dst, const std::string& path);

 private:
  SwsContext* context_for(int src_w, int src_h, AVPixelFormat src_format, int dst_w, int dst_h,
                          int matrix, bool full_range);
  SwsPtr sws_;
  int key_[7] = {0, 0, -1, 0, 0, 0, 0};
  std::vector<uint8_t> scratch_;  // scaled picture in source orientation (padded rows)
};

}  // namespace harvest::data
