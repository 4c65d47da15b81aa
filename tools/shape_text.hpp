// An example shape as text, "28,28" <-> {28, 28}: how a model's metadata holds it
// ("example_shape") and how messages show it.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace tools {

std::string shape_text(const std::vector<std::size_t>& shape);
/// Throws std::invalid_argument naming "example_shape" for an item that is not a whole number.
std::vector<std::size_t> parse_shape_text(const std::string& text);

}  // namespace tools
