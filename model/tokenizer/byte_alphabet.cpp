#include "model/tokenizer/byte_alphabet.hpp"

#include "model/tokenizer/utf8.hpp"

namespace harvest::tokenizer {

namespace {
bool keeps_itself(int b) {
  return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}
}  // namespace

ByteAlphabet::ByteAlphabet() {
  byte_of_.fill(-1);
  int k = 0;
  for (int b = 0; b < 256; ++b)
    if (keeps_itself(b)) {
      code_points_[b] = static_cast<char32_t>(b);
      order_[k++] = static_cast<uint8_t>(b);
    }
  int remapped = 0;
  for (int b = 0; b < 256; ++b)
    if (!keeps_itself(b)) {
      code_points_[b] = static_cast<char32_t>(256 + remapped++);
      order_[k++] = static_cast<uint8_t>(b);
    }
  for (int b = 0; b < 256; ++b) {
    utf8_append(symbols_[b], code_points_[b]);
    byte_of_[code_points_[b]] = static_cast<int16_t>(b);
  }
}

std::optional<uint8_t> ByteAlphabet::byte_of(char32_t cp) const {
  if (cp >= byte_of_.size() || byte_of_[cp] < 0) return std::nullopt;
  return static_cast<uint8_t>(byte_of_[cp]);
}

}  // namespace harvest::tokenizer
