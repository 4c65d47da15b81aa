#include "nn/sequential.hpp"

#include <stdexcept>
#include <utility>

#include <fmt/format.h>

namespace nn {

ag::Var Sequential::forward(ag::Var x) {
  const auto& list = children();
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (i + 1 < list.size()) {
      if (ag::Var both = list[i].module->forward_fused(x, *list[i + 1].module); both.valid()) {
        x = both;
        ++i;
        continue;
      }
    }
    x = list[i].module->forward(x);
  }
  return x;
}

const Module& Sequential::operator[](std::size_t i) const {
  if (i >= size())
    throw std::out_of_range(fmt::format("Sequential: index {} out of range (size {})", i, size()));
  return *children()[i].module;
}

Module& Sequential::operator[](std::size_t i) {
  return const_cast<Module&>(std::as_const(*this)[i]);
}

}  // namespace nn
