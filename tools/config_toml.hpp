// The entries of a --config file, parsed as TOML by toml++ (Debian's libtomlplusplus):
//
//   epochs = 10                      # numbers and true / false
//   data = "/data/fashion-mnist"     # strings, "basic" or 'literal'
//   hidden = [512, 256]              # arrays of those, on one line or on several
//   [sample]                         # sections; [a.b] and dotted keys give several parents
//   temperature = 0.5
//
// CLI11 2.1's own reader took malformed text for values: `out = "runs/a # b"` cut at the '#'
// and kept the quote (the folder '"runs/a'), an unterminated string or text after one went on
// as part of the value, and an unclosed array took the next lines for its items. A TOML parser
// makes each an error naming the file and the line; inline tables, arrays of tables, arrays in
// arrays and dates, which no flag takes, are refused the same way.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

namespace tools {

/// The key = value entries of `text`: the key's section (and dotted key) as parents, the value
/// as its inputs (an array's items; strings unquoted, numbers written out), and CLI11's "++"
/// marker for each section. Throws FlagError "--config: FILE:LINE: ..." for text that is not
/// TOML (a key given twice included) or a value no flag takes.
std::vector<CLI::ConfigItem> read_config_items(std::string_view text, const std::string& file);

}  // namespace tools
