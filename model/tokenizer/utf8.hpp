// UTF-8 <-> code points. Invalid input never throws: each maximal ill-formed subsequence becomes
// one U+FFFD, the same substitution Python's bytes.decode('utf-8', errors='replace') makes, so a
// caption with stray bytes tokenizes like its decoded Python string would.
#pragma once

#include <string>
#include <string_view>

namespace harvest::tokenizer {

constexpr char32_t kReplacementChar = 0xFFFD;

std::u32string utf8_decode(std::string_view bytes);

void utf8_append(std::string& out, char32_t cp);
std::string utf8_encode(std::u32string_view cps);

}  // namespace harvest::tokenizer
