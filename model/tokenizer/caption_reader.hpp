// Reads the captions of a training manifest for vocabulary learning:
//  * JSON Lines (any extension but .csv): one object per non-blank line with "caption" (string)
//    and/or "captions" (array of strings); other fields are ignored.
//  * CSV (.csv): RFC 4180 (quoted fields, "" escapes, newlines inside quotes), a header row
//    with a column named "caption".
// Errors name the file and line (and the field).
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace harvest::tokenizer {

// Calls `on_caption` for every caption in file order; returns how many.
size_t read_captions(const std::string& path,
                     const std::function<void(std::string_view caption)>& on_caption);

}  // namespace harvest::tokenizer
