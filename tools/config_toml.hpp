// The entries of a --config file: the part of TOML a configuration of flags uses, read strictly.
//
//   epochs = 10                      # numbers, words (true, false) as written
//   data = "/data/fashion-mnist"     # basic strings (escapes \" \\ \t \n \r \b \f \uXXXX), 'literal' ones
//   hidden = [512, 256]              # arrays of those, on one line or on several
//   [sample]                         # sections; [a.b] and dotted keys give several parents
//   temperature = 0.5
//
// CLI11's reader took malformed text for values: `out = "runs/a # b"` cut at the '#' and kept
// the quote (the folder '"runs/a'), an unterminated string or text after one went on as part of
// the value, and an unclosed array took the next lines for its items. Here each is an error
// naming the file and the line; so are multi-line strings, inline tables and arrays of tables,
// which no flag takes.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

namespace tools {

/// The key = value entries of `text` in order: the key's section (and dotted key) as parents,
/// the value as its inputs (an array's items, each string unquoted). Throws FlagError
/// "--config: FILE:LINE: ..." for text that is not such an entry, and for a key given twice
/// in one section.
std::vector<CLI::ConfigItem> read_config_items(std::string_view text, const std::string& file);

}  // namespace tools
