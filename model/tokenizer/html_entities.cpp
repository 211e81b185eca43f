// The named character references harvest decodes (see html_unescape.hpp for the chosen subset).
// Names and code points are those of the HTML 4.01 and HTML5 specifications.
#include <unordered_map>

#include "model/tokenizer/html_unescape.hpp"

namespace harvest::tokenizer {

namespace {

struct Entity {
  const char* name;
  char32_t cp;
};

// HTML 4.01's Latin-1 entities are U+00A0..U+00FF in order; HTML5 also accepts each without ';'.
constexpr const char* kLatin1Names[96] = {
    "nbsp",   "iexcl",  "cent",   "pound",  "curren", "yen",    "brvbar", "sect",
    "uml",    "copy",   "ordf",   "laquo",  "not",    "shy",    "reg",    "macr",
    "deg",    "plusmn", "sup2",   "sup3",   "acute",  "micro",  "para",   "middot",
    "cedil",  "sup1",   "ordm",   "raquo",  "frac14", "frac12", "frac34", "iquest",
    "Agrave", "Aacute", "Acirc",  "Atilde", "Auml",   "Aring",  "AElig",  "Ccedil",
    "Egrave", "Eacute", "Ecirc",  "Euml",   "Igrave", "Iacute", "Icirc",  "Iuml",
    "ETH",    "Ntilde", "Ograve", "Oacute", "Ocirc",  "Otilde", "Ouml",   "times",
    "Oslash", "Ugrave", "Uacute", "Ucirc",  "Uuml",   "Yacute", "THORN",  "szlig",
    "agrave", "aacute", "acirc",  "atilde", "auml",   "aring",  "aelig",  "ccedil",
    "egrave", "eacute", "ecirc",  "euml",   "igrave", "iacute", "icirc",  "iuml",
    "eth",    "ntilde", "ograve", "oacute", "ocirc",  "otilde", "ouml",   "divide",
    "oslash", "ugrave", "uacute", "ucirc",  "uuml",   "yacute", "thorn",  "yuml"};

// Legacy names outside Latin-1 that HTML5 also accepts without ';'.
constexpr Entity kLegacyOther[] = {{"amp", '&'},  {"lt", '<'},    {"gt", '>'},   {"quot", '"'},
                                   {"AMP", '&'},  {"LT", '<'},    {"GT", '>'},   {"QUOT", '"'},
                                   {"COPY", 0xA9}, {"REG", 0xAE}};

// Names that require ';'.
constexpr Entity kWithSemicolon[] = {
    // HTML 4.01 special
    {"apos", '\''}, {"OElig", 0x152}, {"oelig", 0x153}, {"Scaron", 0x160}, {"scaron", 0x161},
    {"Yuml", 0x178}, {"circ", 0x2C6}, {"tilde", 0x2DC}, {"ensp", 0x2002}, {"emsp", 0x2003},
    {"thinsp", 0x2009}, {"zwnj", 0x200C}, {"zwj", 0x200D}, {"lrm", 0x200E}, {"rlm", 0x200F},
    {"ndash", 0x2013}, {"mdash", 0x2014}, {"lsquo", 0x2018}, {"rsquo", 0x2019},
    {"sbquo", 0x201A}, {"ldquo", 0x201C}, {"rdquo", 0x201D}, {"bdquo", 0x201E},
    {"dagger", 0x2020}, {"Dagger", 0x2021}, {"permil", 0x2030}, {"lsaquo", 0x2039},
    {"rsaquo", 0x203A}, {"euro", 0x20AC},
    // HTML 4.01 symbols and Greek
    {"fnof", 0x192}, {"Alpha", 0x391}, {"Beta", 0x392}, {"Gamma", 0x393}, {"Delta", 0x394},
    {"Epsilon", 0x395}, {"Zeta", 0x396}, {"Eta", 0x397}, {"Theta", 0x398}, {"Iota", 0x399},
    {"Kappa", 0x39A}, {"Lambda", 0x39B}, {"Mu", 0x39C}, {"Nu", 0x39D}, {"Xi", 0x39E},
    {"Omicron", 0x39F}, {"Pi", 0x3A0}, {"Rho", 0x3A1}, {"Sigma", 0x3A3}, {"Tau", 0x3A4},
    {"Upsilon", 0x3A5}, {"Phi", 0x3A6}, {"Chi", 0x3A7}, {"Psi", 0x3A8}, {"Omega", 0x3A9},
    {"alpha", 0x3B1}, {"beta", 0x3B2}, {"gamma", 0x3B3}, {"delta", 0x3B4}, {"epsilon", 0x3B5},
    {"zeta", 0x3B6}, {"eta", 0x3B7}, {"theta", 0x3B8}, {"iota", 0x3B9}, {"kappa", 0x3BA},
    {"lambda", 0x3BB}, {"mu", 0x3BC}, {"nu", 0x3BD}, {"xi", 0x3BE}, {"omicron", 0x3BF},
    {"pi", 0x3C0}, {"rho", 0x3C1}, {"sigmaf", 0x3C2}, {"sigma", 0x3C3}, {"tau", 0x3C4},
    {"upsilon", 0x3C5}, {"phi", 0x3C6}, {"chi", 0x3C7}, {"psi", 0x3C8}, {"omega", 0x3C9},
    {"thetasym", 0x3D1}, {"upsih", 0x3D2}, {"piv", 0x3D6}, {"bull", 0x2022}, {"hellip", 0x2026},
    {"prime", 0x2032}, {"Prime", 0x2033}, {"oline", 0x203E}, {"frasl", 0x2044},
    {"weierp", 0x2118}, {"image", 0x2111}, {"real", 0x211C}, {"trade", 0x2122},
    {"alefsym", 0x2135}, {"larr", 0x2190}, {"uarr", 0x2191}, {"rarr", 0x2192}, {"darr", 0x2193},
    {"harr", 0x2194}, {"crarr", 0x21B5}, {"lArr", 0x21D0}, {"uArr", 0x21D1}, {"rArr", 0x21D2},
    {"dArr", 0x21D3}, {"hArr", 0x21D4}, {"forall", 0x2200}, {"part", 0x2202},
    {"exist", 0x2203}, {"empty", 0x2205}, {"nabla", 0x2207}, {"isin", 0x2208},
    {"notin", 0x2209}, {"ni", 0x220B}, {"prod", 0x220F}, {"sum", 0x2211}, {"minus", 0x2212},
    {"lowast", 0x2217}, {"radic", 0x221A}, {"prop", 0x221D}, {"infin", 0x221E}, {"ang", 0x2220},
    {"and", 0x2227}, {"or", 0x2228}, {"cap", 0x2229}, {"cup", 0x222A}, {"int", 0x222B},
    {"there4", 0x2234}, {"sim", 0x223C}, {"cong", 0x2245}, {"asymp", 0x2248}, {"ne", 0x2260},
    {"equiv", 0x2261}, {"le", 0x2264}, {"ge", 0x2265}, {"sub", 0x2282}, {"sup", 0x2283},
    {"nsub", 0x2284}, {"sube", 0x2286}, {"supe", 0x2287}, {"oplus", 0x2295},
    {"otimes", 0x2297}, {"perp", 0x22A5}, {"sdot", 0x22C5}, {"lceil", 0x2308},
    {"rceil", 0x2309}, {"lfloor", 0x230A}, {"rfloor", 0x230B},
    // HTML5 moved these two to the mathematical angle brackets.
    {"lang", 0x27E8}, {"rang", 0x27E9},
    {"loz", 0x25CA}, {"spades", 0x2660}, {"clubs", 0x2663}, {"hearts", 0x2665},
    {"diams", 0x2666},
    // HTML5 names for ASCII characters and common typography
    {"Tab", '\t'}, {"NewLine", '\n'}, {"excl", '!'}, {"num", '#'}, {"dollar", '$'},
    {"percnt", '%'}, {"lpar", '('}, {"rpar", ')'}, {"ast", '*'}, {"midast", '*'}, {"plus", '+'},
    {"comma", ','}, {"period", '.'}, {"sol", '/'}, {"colon", ':'}, {"semi", ';'},
    {"equals", '='}, {"quest", '?'}, {"commat", '@'}, {"lsqb", '['}, {"lbrack", '['},
    {"bsol", '\\'}, {"rsqb", ']'}, {"rbrack", ']'}, {"Hat", '^'}, {"lowbar", '_'},
    {"UnderBar", '_'}, {"grave", '`'}, {"DiacriticalGrave", '`'}, {"lcub", '{'},
    {"lbrace", '{'}, {"verbar", '|'}, {"vert", '|'}, {"VerticalLine", '|'}, {"rcub", '}'},
    {"rbrace", '}'}, {"NonBreakingSpace", 0xA0}, {"TRADE", 0x2122}, {"hyphen", 0x2010},
    {"dash", 0x2010}, {"half", 0xBD}, {"centerdot", 0xB7},
};

struct Table {
  std::unordered_map<std::string, std::u32string> by_name;

  Table() {
    auto add = [this](const std::string& name, char32_t cp, bool also_without_semicolon) {
      by_name[name + ";"] = std::u32string(1, cp);
      if (also_without_semicolon) by_name[name] = std::u32string(1, cp);
    };
    for (int i = 0; i < 96; ++i) add(kLatin1Names[i], static_cast<char32_t>(0xA0 + i), true);
    for (const auto& e : kLegacyOther) add(e.name, e.cp, true);
    for (const auto& e : kWithSemicolon) add(e.name, e.cp, false);
  }
};

const Table& table() {
  // Immutable after construction (thread-safe static init): a constant, not shared mutable state.
  static const Table t;
  return t;
}

}  // namespace

const std::u32string* html_named_entity(std::string_view name) {
  const auto& m = table().by_name;
  const auto it = m.find(std::string(name));
  return it == m.end() ? nullptr : &it->second;
}

std::vector<std::string> html_entity_names() {
  std::vector<std::string> names;
  for (const auto& [name, value] : table().by_name) names.push_back(name);
  return names;
}

}  // namespace harvest::tokenizer
