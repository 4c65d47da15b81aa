#include "datasets/csv.hpp"

#include <charconv>
#include <cmath>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "datasets/error.hpp"
#include "datasets/npy.hpp"

namespace datasets {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// A cell's number as written: spaces, a pair of double quotes around it (R's write.csv, Excel)
// and a leading '+' are dropped.
std::string_view number_text(std::string_view cell) {
  cell = trim(cell);
  if (cell.size() >= 2 && cell.front() == '"' && cell.back() == '"') cell = trim(cell.substr(1, cell.size() - 2));
  if (cell.size() >= 2 && cell.front() == '+' && cell[1] != '-' && cell[1] != '+') cell.remove_prefix(1);
  return cell;
}

std::vector<std::string_view> cells(std::string_view line, char delimiter) {
  std::vector<std::string_view> out;
  for (std::size_t start = 0;;) {
    const std::size_t end = line.find(delimiter, start);
    out.push_back(number_text(line.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start)));
    if (end == std::string_view::npos) return out;
    start = end + 1;
  }
}

// ',' unless the first row has none and has ';' (European spreadsheets) or tabs.
char delimiter_of(std::string_view first_row) {
  if (first_row.find(',') != std::string_view::npos) return ',';
  if (first_row.find(';') != std::string_view::npos) return ';';
  if (first_row.find('\t') != std::string_view::npos) return '\t';
  return ',';
}

// The cell's number as a float32: none if it is not one, or too large for one (1e40, inf,
// nan). A value too small for one (1e-50, from float64 data) becomes its nearest float, 0 or
// a denormal.
std::optional<float> number_value(std::string_view cell) {
  if (cell.empty()) return std::nullopt;
  const char* last = cell.data() + cell.size();
  float v = 0;
  const auto [end, error] = std::from_chars(cell.data(), last, v);
  if (end == last && error == std::errc() && std::isfinite(v)) return v;
  double wide = 0;
  const auto [wide_end, wide_error] = std::from_chars(cell.data(), last, wide);
  if (wide_end == last && wide_error == std::errc() && std::abs(wide) < 1) return static_cast<float>(wide);
  return std::nullopt;
}

// Written as a number, though maybe not one a float holds ("1e40", "nan", "inf"): such a
// first row is data with a bad cell, not a header to skip.
bool looks_like_a_number(std::string_view cell) {
  double v = 0;
  const auto [end, error] = std::from_chars(cell.data(), cell.data() + cell.size(), v);
  return !cell.empty() && (error == std::errc() || error == std::errc::result_out_of_range) &&
         end == cell.data() + cell.size();
}

}  // namespace

Dataset parse_csv_dataset(std::string_view text, const std::string& source, std::size_t label_column) {
  std::vector<float> table;  // the rows' values, columns * rows
  std::size_t columns = 0, rows = 0, line_number = 0;
  bool header = false;
  char delimiter = 0;
  text = without_utf8_mark(text, source);
  for (std::size_t start = 0; start < text.size();) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = trim(text.substr(start, end - start));
    start = end + 1;
    ++line_number;
    if (line.empty() || line.front() == '#') continue;
    if (delimiter == 0) delimiter = delimiter_of(line);
    const std::vector<std::string_view> row = cells(line, delimiter);
    if (columns == 0) {
      columns = row.size();
      bool numeric = true;
      for (std::string_view c : row) numeric = numeric && looks_like_a_number(c);
      if (!numeric) {
        header = true;
        continue;
      }
    }
    if (row.size() != columns)
      throw DataError(fmt::format("{}:{}: {} cells, but the first row has {}", source, line_number, row.size(), columns));
    for (std::size_t c = 0; c < row.size(); ++c) {
      const std::optional<float> v = number_value(row[c]);
      if (!v)
        throw DataError(fmt::format("{}:{}: column {}: '{}' is not a {}number", source, line_number, c + 1, shown(row[c]),
                                    looks_like_a_number(row[c]) ? "finite float32 " : ""));
      table.push_back(*v);
    }
    ++rows;
  }
  if (rows == 0) throw DataError(fmt::format("{}: no rows of numbers{}", source, header ? " after the header" : ""));
  if (label_column > columns)
    throw DataError(fmt::format("{}: --label-column {} but the rows have {} columns", source, label_column, columns));
  if (label_column != 0 && columns == 1)
    throw DataError(fmt::format("{}: the only column is the label column", source));
  std::vector<float> values;
  std::vector<std::int32_t> labels;
  values.reserve(rows * (columns - (label_column ? 1 : 0)));
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < columns; ++c) {
      const float v = table[r * columns + c];
      if (c + 1 != label_column) {
        values.push_back(v);
      } else if (v < 0 || v != std::floor(v) || v > 1e9F) {
        throw DataError(fmt::format("{}: row {}: label {} is not a whole number from 0", source, r + 1, v));
      } else {
        labels.push_back(static_cast<std::int32_t>(v));
      }
    }
  const std::size_t features = columns - (label_column ? 1 : 0);
  if (label_column) return Dataset(std::move(values), features, std::move(labels));
  return Dataset(std::move(values), features);
}

Dataset read_csv_dataset(const std::filesystem::path& path, std::size_t label_column) {
  return parse_csv_dataset(read_file_bytes(path), path.string(), label_column);
}

}  // namespace datasets
