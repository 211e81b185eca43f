// HTML character-reference decoding with the exact rules of Python's html.unescape (which CLIP's
// cleaning applies twice): numeric references &#NN; / &#xHH; (the ';' optional) with the HTML5
// replacements (Windows-1252 for 0x80-0x9F, U+FFFD for 0, surrogates and > U+10FFFF, nothing for
// the other disallowed code points), and named references with HTML5's longest-prefix rule for
// the legacy names that may omit ';' (&ampx -> &x).
//
// Named references: a subset of HTML5's 2231 names, listed in html_entities.cpp: every HTML 4.01
// entity (Latin-1, symbols and Greek, special), &apos;, HTML5's names for ASCII punctuation, and
// the upper-case aliases (&AMP; &LT; &GT; &QUOT; &COPY; &REG; ...), plus all 106 legacy names
// without ';'. An unknown name stays literal text, as Python leaves names it does not know;
// tests compare every supported name with Python's table.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace harvest::tokenizer {

std::u32string html_unescape(std::u32string_view text);

// The named-entity table: `name` includes the trailing ';' when the name requires it. Returns
// nullptr for unknown names.
const std::u32string* html_named_entity(std::string_view name);

// Every supported name (with ';' where required), for tests and docs.
std::vector<std::string> html_entity_names();

}  // namespace harvest::tokenizer
