#include "tools/config_toml.hpp"

#include <cstddef>
#include <map>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "datasets/error.hpp"  // shown
#include "tools/options.hpp"   // FlagError

namespace tools {
namespace {

class Reader {
 public:
  Reader(std::string_view text, const std::string& file) : text_(text), file_(file) {}

  std::vector<CLI::ConfigItem> entries() {
    std::vector<CLI::ConfigItem> items;
    std::vector<std::string> section;
    std::map<std::pair<std::vector<std::string>, std::string>, std::size_t> seen;  // (parents, key) -> its line
    for (skip_comment(); !done(); skip_comment()) {
      if (peek() == '\r' || peek() == '\n') {
        end_of_line("");
        continue;
      }
      if (peek() == '[') {
        ++pos_;
        if (peek() == '[') fail(line_, "an array of tables ([[...]]), which no flag takes");
        section = dotted_key();
        skip_blanks();
        if (peek() != ']') fail(line_, "a section header without its closing ']'");
        ++pos_;
        items.push_back(CLI::ConfigItem{section, "++", {}});  // CLI11's section marker: the section is checked
        end_of_line("the section header");
        continue;
      }
      const std::size_t at = line_;
      const std::vector<std::string> key = dotted_key();
      CLI::ConfigItem item{section, key.back(), {}};
      item.parents.insert(item.parents.end(), key.begin(), key.end() - 1);
      skip_blanks();
      if (peek() != '=') fail(at, fmt::format("expected '=' after the key '{}'", datasets::shown(item.name, 60)));
      ++pos_;
      value(item.inputs, false);
      const auto [first, added] = seen.emplace(std::pair{item.parents, item.name}, at);
      if (!added)
        fail(at, fmt::format("'{}' is given again{} (first on line {})", datasets::shown(item.name, 60),
                             section.empty() ? "" : fmt::format(" in [{}]", fmt::join(section, ".")), first->second));
      items.push_back(std::move(item));
      end_of_line("the value");
    }
    return items;
  }

 private:
  [[noreturn]] void fail(std::size_t line, const std::string& what) const {
    throw FlagError(fmt::format("--config: {}:{}: {}", file_, line, what));
  }
  bool done() const { return pos_ >= text_.size(); }
  char peek() const { return done() ? '\0' : text_[pos_]; }
  bool at_any_of(std::string_view chars) const { return !done() && chars.find(peek()) != std::string_view::npos; }
  void skip_blanks() {
    while (at_any_of(" \t")) ++pos_;
  }
  // Blanks and a comment, up to the end of the line.
  void skip_comment() {
    skip_blanks();
    if (peek() == '#')
      while (!done() && peek() != '\n') ++pos_;
  }
  // Blanks, a comment and line ends, for the inside of an array.
  void skip_lines() {
    for (skip_comment(); at_any_of("\r\n"); skip_comment())
      if (text_[pos_++] == '\n') ++line_;
  }
  // A comment at most, then the end of the line (or of the text).
  void end_of_line(const char* after) {
    skip_comment();
    if (peek() == '\r' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '\n') ++pos_;
    if (done()) return;
    if (peek() != '\n') {
      const std::string_view rest = text_.substr(pos_, text_.find('\n', pos_) - pos_);
      fail(line_, fmt::format("'{}' after {}; a line holds one entry, and '#' starts a comment",
                              datasets::shown(rest, 60), after));
    }
    ++pos_;
    ++line_;
  }

  // A key (bare: letters, digits, '_' and '-'; or quoted), and any further ones after dots.
  std::vector<std::string> dotted_key() {
    std::vector<std::string> parts;
    for (;;) {
      skip_blanks();
      if (peek() == '"' || peek() == '\'') {
        parts.push_back(string_value());
      } else {
        const std::size_t start = pos_;
        while (!done() && (std::isalnum(static_cast<unsigned char>(peek())) || peek() == '_' || peek() == '-')) ++pos_;
        if (pos_ == start) {
          const std::string_view rest = text_.substr(pos_, text_.find('\n', pos_) - pos_);
          fail(line_, fmt::format("expected a key (letters, digits, '_' and '-'), found '{}'", datasets::shown(rest, 60)));
        }
        parts.emplace_back(text_.substr(start, pos_ - start));
      }
      skip_blanks();
      if (peek() != '.') return parts;
      ++pos_;
    }
  }

  // A string, an array, or a word as written (a number, true, false): what a flag takes.
  void value(std::vector<std::string>& inputs, bool in_array) {
    skip_blanks();
    if (peek() == '"' || peek() == '\'') {
      inputs.push_back(string_value());
    } else if (peek() == '[') {
      if (in_array) fail(line_, "an array inside an array, which no flag takes");
      array(inputs);
    } else if (peek() == '{') {
      fail(line_, "an inline table ({...}), which no flag takes");
    } else {
      const std::size_t start = pos_;
      while (!done() && !at_any_of(" \t\r\n#,]")) ++pos_;
      if (pos_ == start) fail(line_, in_array ? "expected a value or ']' in the array" : "expected a value after '='");
      inputs.emplace_back(text_.substr(start, pos_ - start));
    }
  }

  void array(std::vector<std::string>& inputs) {
    const std::size_t opened = line_;
    ++pos_;  // '['
    for (;;) {
      skip_lines();
      if (done()) fail(opened, "an array without its closing ']'");
      if (peek() == ']') break;
      value(inputs, true);
      skip_lines();
      if (peek() == ',') ++pos_;
      else if (peek() == ']') break;
      else fail(line_, fmt::format("expected ',' or ']' in the array opened on line {}", opened));
    }
    ++pos_;  // ']'
  }

  // "basic" (with escapes) or 'literal', on one line.
  std::string string_value() {
    const char quote = peek();
    if (text_.substr(pos_, 3) == std::string(3, quote))
      fail(line_, "a multi-line string, which no flag takes; write the value on one line");
    const std::size_t line = line_;
    ++pos_;
    std::string out;
    for (;;) {
      if (at_any_of("\r\n") || done()) fail(line, "a string without its closing quote");
      const char c = text_[pos_++];
      if (c == quote) return out;
      if (c == '\\' && quote == '"') escape(out);
      else out += c;
    }
  }

  void escape(std::string& out) {
    if (done()) fail(line_, "a string without its closing quote");
    const char c = text_[pos_++];
    switch (c) {
      case '"': out += '"'; return;
      case '\\': out += '\\'; return;
      case 'n': out += '\n'; return;
      case 't': out += '\t'; return;
      case 'r': out += '\r'; return;
      case 'b': out += '\b'; return;
      case 'f': out += '\f'; return;
      case 'u': unicode(out, 4); return;
      case 'U': unicode(out, 8); return;
      default:
        fail(line_, fmt::format("'\\{}' is not an escape of a \"string\" (write \\\\ for a backslash, or use a "
                                "'literal string')",
                                datasets::shown(std::string(1, c), 4)));
    }
  }

  // \uXXXX or \UXXXXXXXX: a Unicode scalar value, written out as UTF-8.
  void unicode(std::string& out, std::size_t digits) {
    std::uint32_t code = 0;
    for (std::size_t i = 0; i < digits; ++i, ++pos_) {
      const char h = peek();
      const int v = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
      if (v < 0) fail(line_, fmt::format("\\{} takes {} hexadecimal digits", digits == 4 ? 'u' : 'U', digits));
      code = code * 16 + static_cast<std::uint32_t>(v);
    }
    if (code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF))
      fail(line_, fmt::format("U+{:X} is not a Unicode character", code));
    auto put = [&out](std::uint32_t byte) { out += static_cast<char>(byte); };
    if (code < 0x80) {
      put(code);
    } else if (code < 0x800) {
      put(0xC0 | (code >> 6)), put(0x80 | (code & 0x3F));
    } else if (code < 0x10000) {
      put(0xE0 | (code >> 12)), put(0x80 | ((code >> 6) & 0x3F)), put(0x80 | (code & 0x3F));
    } else {
      put(0xF0 | (code >> 18)), put(0x80 | ((code >> 12) & 0x3F)), put(0x80 | ((code >> 6) & 0x3F)),
          put(0x80 | (code & 0x3F));
    }
  }

  std::string_view text_;
  const std::string& file_;
  std::size_t pos_ = 0, line_ = 1;
};

}  // namespace

std::vector<CLI::ConfigItem> read_config_items(std::string_view text, const std::string& file) {
  return Reader(text, file).entries();
}

}  // namespace tools
