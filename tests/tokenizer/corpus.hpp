// The comparison corpus: hand-picked cases for every rule of CLIP's tokenizer, plus seeded
// random mixtures of words, scripts, emoji, entities, numbers and whitespace.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "model/tokenizer/utf8.hpp"

namespace harvest::test {

inline std::vector<std::string> handpicked_corpus() {
  std::vector<std::string> c = {
      "",
      "   ",
      "a",
      "Hello, World!",
      "A photo of a cat sitting on a red sofa.",
      "a man is playing guitar while a woman dances in the rain",
      "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG",
      "  leading and trailing spaces  ",
      "tab\there, new\nline, cr\r\nlf, vt\x0b ff\x0c end",
      "sep\x1c\x1d\x1e\x1fx",
      "nbsp\u00a0here\u2003em\u3000ideographic\u2028ls\u2029ps\u202fnarrow\u205fmath",
      "mongolian\u180evowel separator",
      "don't can't won't I'm you're we've they'll she'd it's",
      "DON'T I'M YOU'RE WE'VE THEY'LL SHE'D IT'S",
      "'tis the season, rock'n'roll, o'clock, ''quoted''",
      "it\u2019s curly \u201cquotes\u201d \u2018single\u2019",
      "'\u017f long s and \u212a kelvin and \u212b angstrom",
      "caf\u00e9 cr\u00e8me br\u00fbl\u00e9e na\u00efve Zo\u00eb \u00fcber",
      "cafe\u0301 decomposed e\u0301\u0300\u0302 marks",
      "Stra\u00dfe STRASSE \u1e9e capital sharp s",
      "\u0130stanbul \u0131 I i \u0130I",
      "\u039f\u0394\u03a5\u03a3\u03a3\u0395\u03a5\u03a3 \u03a3 \u0391\u03a3. \u03a3\u0391 \u03c3\u03c2 \u0391\u03a3\u0301 \u0391'\u03a3",
      "\u1f08\u1f50\u03c4\u03cc\u03c2 \u1fb3 \u03b1\u0345 \u1fbc \u0391\u0345",
      "\u041c\u043e\u0441\u043a\u0432\u0430 \u041f\u0420\u0418\u0412\u0415\u0422 \u0451\u0401",
      "\u6211\u7231\u5317\u4eac\u5929\u5b89\u95e8",
      "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3002\u30ab\u30bf\u30ab\u30ca",
      "\uc548\ub155\ud558\uc138\uc694 \uc138\uacc4",
      "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
      "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd",
      "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e",
      "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e04\u0e23\u0e31\u0e1a",
      "\U0001F44D\U0001F3FD \U0001F389\U0001F389 \U0001F468\u200d\U0001F469\u200d\U0001F467 \u2764\ufe0f",
      "\U0001F1EB\U0001F1F7 flag \U0001F600\U0001F601\U0001F602 smile",
      "123 4567 3.14159 1,000,000 -42 +7 1e10 0x1F",
      "\u00b2\u00b3 \u00bd \u2155 \u2167 \u216b \u0661\u0662\u0663 \u0967\u0968 \uff11\uff12",
      "\uff21\uff22\uff23 fullwidth \uff41\uff42\uff43",
      "\ufb01\ufb02 ligatures \u01c5 titlecase \u01c4 \u01c6",
      "&amp; &lt;b&gt;bold&lt;/b&gt; &quot;quoted&quot; &apos;apostrophe&apos;",
      "&amp;amp; &amp;lt; &amp;#39; double escaped",
      "&#39; &#x27; &#8217; &#128512; &#x1F600; &#0; &#x110000; &#99999999999999;",
      "&#150; &#x80; &#x9F; &#x81; &#13; &#x7F; &#1; &#xFFFE; &#xFDD0; &#xD800;",
      "&nbsp;&copy 2020 &ampfoo &notit; &notin; &eacute;t&eacute; &Eacute &unknown; & amp; &#65 &#x; &&amp;",
      "&AMP; &LT &GT; &QUOT; &COPY; &REG &TRADE; &hellip; &mdash; &ndash; &euro; &lang; &rang;",
      "&alpha;&beta;&Gamma; &Sigma;&Sigma; &sigmaf; &infin; &ne; &le; &rarr; &hearts;",
      "&#X41; &#x41 &#65a &#a; &# &x41; &amp &ampamp; &lt&gt &nbsp",
      "<|startoftext|>hello<|endoftext|> world <|ENDOFTEXT|>",
      "<|start of text|> <|endoftext <|>",
      "https://example.com/path?q=1&x=2#frag user@example.org",
      "int main() { return 0; } // code & stuff",
      "!!!??? ... --- *** ### $$$ %%% ^^^ ~~~ ``` ||| \\\\ ///",
      "\u00dcn\u00efc\u00f6d\u00e9 \u00c0\u00c9\u00ce\u00d5\u00dc \u00c6\u00d8\u00c5 \u00e6\u00f8\u00e5",
      "\u0686\u06af \u06cc\u06a9 \u0628\u0627\u0631",
      "x\u0301\u0302\u0303\u0304 combining on x",
      "zero\u200bwidth\u200cjoiners\u200d\ufeffbom",
      "\u00ad soft hyphen \u2010\u2011\u2012 dashes",
      "\U0001D400\U0001D401 math bold \U0001D7CE\U0001D7CF",
      "\U00020000\U0002A6D6 ext B",
      "\u24b6\u24b7 circled \u24d0\u24d1",
      "\u2160\u2161\u2170 roman",
      "hello\u3000world\u00a0again",
      "a\u0345b",
  };
  // Long inputs: truncation and repeated words.
  std::string long_text;
  for (int i = 0; i < 60; ++i) long_text += "a long caption about a dog running on the beach, ";
  c.push_back(long_text);
  c.push_back(std::string(500, 'a'));
  c.push_back(std::string(300, '!'));
  std::string mixed_long;
  for (int i = 0; i < 40; ++i) mixed_long += "caf\u00e9\u6211\U0001F600 12 ";
  c.push_back(mixed_long);
  return c;
}

// Seeded mixtures (mt19937's output is specified by the standard; no <random> distributions,
// whose results differ between standard libraries).
inline std::vector<std::string> random_corpus(size_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  auto pick = [&rng](size_t n) { return static_cast<size_t>(rng() % n); };
  const std::vector<std::string> fragments = {
      "video", "clip", "a person", "dancing", "cooking pasta", "The", "IS", "running", "cat's",
      "you'll", "we're", "I'd", "Caf\u00e9", "\u00e9t\u00e9", "na\u00efve", "M\u00fcller", "\u00df",
      "\u03a3\u039f\u03a6\u0399\u0391", "\u0394\u03a3", "\u043f\u0440\u0438\u0432\u0435\u0442",
      "\u6f22\u5b57", "\u3072\u3089\u304c\u306a", "\ud55c\uad6d\uc5b4", "\u0639\u0631\u0628\u064a",
      "\U0001F436", "\U0001F680\U0001F525", "\u2728", "\U0001F44B\U0001F3FB", "&amp;", "&lt;",
      "&#233;", "&#x4E2D;", "&eacute;", "&hellip;", "&nbsp;", "&copy", "&amp;quot;", "&bogus;",
      "2024", "3.5", "100%", "$9.99", "#hashtag", "@user", "...", "!!", "?!", "--", "(", ")",
      "\"", "'", ",", ";", ":", "/", "\\", "<", ">", "|", "*", "\u2019", "\u201c", "\u2014",
      "\u0130", "\u0131", "\u212a", "e\u0301", "\u0345", "\u1fb3", "\u01c5", "\ufb01", "\u00bd",
      "\u2163", "\u0663", "\uff21", "<|endoftext|>", "<|startoftext|>"};
  const std::vector<std::string> spaces = {" ", " ", " ", "  ", "\t", "\n", "\u00a0", "\u3000",
                                           "", "", "\u2009", "\r\n"};
  // Code point ranges assigned since Unicode 6 or earlier (so every Unicode version agrees).
  const std::vector<std::pair<char32_t, char32_t>> ranges = {
      {0x21, 0x7E},   {0xA1, 0x24F},  {0x391, 0x3C9},   {0x400, 0x4FF},   {0x5D0, 0x5EA},
      {0x621, 0x64A}, {0x905, 0x939}, {0xE01, 0xE30},   {0x2010, 0x2027}, {0x2190, 0x21FF},
      {0x2460, 0x24FF}, {0x3041, 0x3096}, {0x4E00, 0x9FA5}, {0xAC00, 0xD7A3},
      {0x1F300, 0x1F5FF}, {0x1F600, 0x1F64F}, {0x300, 0x36F}};
  std::vector<std::string> out;
  for (size_t n = 0; n < count; ++n) {
    std::string s;
    const size_t parts = 1 + pick(12);
    for (size_t p = 0; p < parts; ++p) {
      if (pick(3) == 0) {
        const auto& [lo, hi] = ranges[pick(ranges.size())];
        const size_t len = 1 + pick(6);
        for (size_t k = 0; k < len; ++k)
          tokenizer::utf8_append(s, lo + static_cast<char32_t>(pick(hi - lo + 1)));
      } else {
        s += fragments[pick(fragments.size())];
      }
      s += spaces[pick(spaces.size())];
    }
    out.push_back(s);
  }
  return out;
}

}  // namespace harvest::test
