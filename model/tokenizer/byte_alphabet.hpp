// GPT-2/CLIP's byte-to-unicode mapping: every byte gets a printable, non-whitespace character so
// a BPE token is a plain string. Printable Latin-1 bytes map to themselves; the other 68 bytes
// (controls, space, 0x7F-0xA0, 0xAD) map to U+0100.. in byte order.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace harvest::tokenizer {

class ByteAlphabet {
 public:
  ByteAlphabet();

  // The UTF-8 of byte b's character.
  const std::string& symbol(uint8_t b) const { return symbols_[b]; }
  char32_t code_point(uint8_t b) const { return code_points_[b]; }

  // The byte a character stands for; nullopt for characters outside the alphabet.
  std::optional<uint8_t> byte_of(char32_t cp) const;

  // CLIP's id order of the 256 byte tokens: the printable bytes first, then the remapped ones
  // (the order of bytes_to_unicode().values()). order()[k] is the byte with id k.
  const std::array<uint8_t, 256>& order() const { return order_; }

 private:
  std::array<char32_t, 256> code_points_{};
  std::array<std::string, 256> symbols_;
  std::array<uint8_t, 256> order_{};
  std::array<int16_t, 0x144> byte_of_{};  // mapped characters are all below U+0144
};

}  // namespace harvest::tokenizer
