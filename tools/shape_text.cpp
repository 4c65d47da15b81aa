#include "tools/shape_text.hpp"

#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "models/vae.hpp"

namespace tools {

std::string shape_text(const std::vector<std::size_t>& shape) { return fmt::format("{}", fmt::join(shape, ",")); }

std::vector<std::size_t> parse_shape_text(const std::string& text) {
  std::vector<std::size_t> shape;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) shape.push_back(models::parse_count(item, "example_shape"));
  return shape;
}

}  // namespace tools
