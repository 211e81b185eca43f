// PNG output through FFmpeg's png encoder (no extra image library): contact sheets of clips.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace harvest::data {

// Encodes packed RGB24 (width*3 bytes a row) as PNG bytes.
std::vector<uint8_t> encode_png_rgb(const uint8_t* rgb, int width, int height);

// A grid of `frames` images [frames, height, width, 3], `columns` wide, 2 px gaps; written to path.
void write_contact_sheet(const std::string& path, const uint8_t* frames, int64_t count, int height,
                         int width, int columns);

}  // namespace harvest::data
