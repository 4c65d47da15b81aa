// Examples from a CSV file of numeric rows (each cell converted as it is checked, so a bad
// cell is reported by line and column):
//   - cells are separated by commas (or by semicolons or tabs when the first row has no comma);
//     a number may be written "+0.5" or in double quotes; a float32 must hold it (values too
//     small for one become 0 or a denormal; too large, inf and nan are refused)
//   - a first row holding anything that is not written as a number is a header
//   - every row has the same number of cells; empty lines and lines starting with # are skipped
//   - with label_column = k (1-based), column k holds whole-number labels, the rest features
//
//   datasets::Dataset d = datasets::read_csv_dataset("points.csv", /*label_column=*/0);
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

#include "datasets/dataset.hpp"

namespace datasets {

/// Examples from CSV text (a fuzzing entry point). Throws DataError naming source:line.
Dataset parse_csv_dataset(std::string_view text, const std::string& source, std::size_t label_column = 0);

Dataset read_csv_dataset(const std::filesystem::path& path, std::size_t label_column = 0);

}  // namespace datasets
