// Axes and the index loops that broadcasting, reductions and permutations share.
//
// A tensor of any rank is walked as a Loop: a few (size, stride) pairs in row-major order,
// after dropping size-1 dimensions and merging neighbours that are contiguous. A reduction
// splits its input into two loops, the kept dimensions (one per output element) and the
// reduced ones (the elements summed into it), so every reduction, and broadcast_to's
// backward rule, is "for each output: fold the input over the reduced loop".
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>

#include <fmt/format.h>

#include "autograd/ops.hpp"
#include "autograd/ops/elementwise.hpp"

namespace ag::detail {

/// Row-major strides of a shape, in elements.
inline std::array<std::size_t, kMaxRank> strides_of(const Shape& s) {
  std::array<std::size_t, kMaxRank> st{};
  std::size_t step = 1;
  for (std::size_t d = s.size(); d-- > 0;) {
    st[d] = step;
    step *= s[d];
  }
  return st;
}

/// A normalised axis in [0, rank): negative counts from the end, as in PyTorch.
inline std::size_t checked_axis(const char* op, int axis, std::size_t rank) {
  const long r = static_cast<long>(rank);
  if (axis < -r || axis >= r)
    throw ShapeError(fmt::format("{}: axis {} is out of range for a tensor of rank {}", op, axis, rank));
  return static_cast<std::size_t>(axis < 0 ? axis + r : axis);
}

/// The bitmask of `axes` for a tensor of rank `rank`; repeated axes are an error.
inline std::uint32_t axis_mask(const char* op, const Axes& axes, std::size_t rank) {
  std::uint32_t mask = 0;
  for (int a : axes) {
    const std::uint32_t bit = 1U << checked_axis(op, a, rank);
    if (mask & bit) throw ShapeError(fmt::format("{}: axis {} is given twice", op, a));
    mask |= bit;
  }
  return mask;
}

/// Nested loops over (size, stride) pairs, outermost first.
struct Loop {
  std::size_t rank = 0;
  std::array<std::size_t, kMaxRank> size{}, stride{};

  /// Appends a dimension, merging it into the previous one when they are contiguous.
  void push(std::size_t n, std::size_t st) {
    if (n == 1) return;
    if (rank > 0 && stride[rank - 1] == st * n) {
      size[rank - 1] *= n;
      stride[rank - 1] = st;
      return;
    }
    size[rank] = n;
    stride[rank] = st;
    ++rank;
  }
  std::size_t count() const {
    std::size_t n = 1;
    for (std::size_t d = 0; d < rank; ++d) n *= size[d];
    return n;
  }
};

/// Calls f(offset) for every element of the loop, in row-major order.
template <class F>
void for_each_offset(const Loop& l, F&& f) {
  if (l.count() == 0) return;
  if (l.rank == 0) {
    f(std::size_t{0});
    return;
  }
  const std::size_t last = l.rank - 1, inner = l.size[last], step = l.stride[last];
  std::array<std::size_t, kMaxRank> idx{};
  std::size_t base = 0;
  for (;;) {
    for (std::size_t i = 0; i < inner; ++i) f(base + i * step);
    std::size_t d = last;
    for (; d-- > 0;) {
      base += l.stride[d];
      if (++idx[d] < l.size[d]) break;
      base -= l.stride[d] * l.size[d];
      idx[d] = 0;
    }
    if (d == static_cast<std::size_t>(-1)) return;
  }
}

/// An input of shape `in` split into the dimensions that are kept and those (in `mask`) that
/// are reduced: element (o, r) is at offset kept-offset(o) + reduced-offset(r).
struct ReductionPlan {
  Loop kept, reduced;
};

inline ReductionPlan plan_reduction(const Shape& in, std::uint32_t mask) {
  ReductionPlan p;
  const auto st = strides_of(in);
  for (std::size_t d = 0; d < in.size(); ++d) ((mask >> d) & 1U ? p.reduced : p.kept).push(in[d], st[d]);
  return p;
}

/// out[o] = fold over the reduced elements of output o; `fold(base, reduced)` returns it.
/// Calls fold once per output element, in row-major order of the kept dimensions.
template <class F>
void for_each_output(const ReductionPlan& p, F&& fold) {
  std::size_t o = 0;
  for_each_offset(p.kept, [&](std::size_t base) { fold(o++, base); });
}

/// Adds into out[j] (or, with fresh, writes 0 + into it) the sum of g[i, j] over rows i, each
/// column accumulated in double over the rows in order (in row-major passes over blocks of
/// columns, so the loads stay sequential). Slices of columns run on all threads when g is large:
/// every column's sum is the same whichever thread takes it. With `relu_out` (the output of a
/// fused ReLU, g's shape), g is first masked as relu's fresh rule does (relu_mask_add) and the
/// masked rows are written to `masked` as well, in the same pass: the column sums are then those
/// of `masked`.
inline void add_column_sums(const float* g, std::size_t rows, std::size_t cols, float* out, bool fresh = false,
                            const float* relu_out = nullptr, float* masked = nullptr) {
  const std::size_t min_columns = std::max<std::size_t>(16, kMinElementsPerThread / std::max<std::size_t>(rows, 1));
  parallel_for(cols, min_columns, [=](std::size_t begin, std::size_t end) {
    constexpr std::size_t kBlock = 256;
    std::array<double, kBlock> acc;
    for (std::size_t j0 = begin; j0 < end; j0 += kBlock) {
      const std::size_t width = std::min(kBlock, end - j0);
      std::fill_n(acc.begin(), width, 0.0);
      for (std::size_t i = 0; i < rows; ++i) {
        const float* row = g + i * cols + j0;
        if (relu_out != nullptr) {
          relu_mask_add<true>(relu_out + i * cols + j0, row, masked + i * cols + j0, width);
          row = masked + i * cols + j0;
        }
        for (std::size_t j = 0; j < width; ++j) acc[j] += row[j];
      }
      for (std::size_t j = 0; j < width; ++j) out[j0 + j] = (fresh ? 0.0F : out[j0 + j]) + static_cast<float>(acc[j]);
    }
  });
}

/// out[o] (+)= scale * sum of the reduced elements of `in` for output o, in double.
inline void sum_reduce(const float* in, const ReductionPlan& p, double scale, float* out, bool accumulate) {
  for_each_output(p, [&](std::size_t o, std::size_t base) {
    double s = 0.0;
    for_each_offset(p.reduced, [&](std::size_t r) { s += in[base + r]; });
    const float v = static_cast<float>(s * scale);
    out[o] = accumulate ? out[o] + v : v;
  });
}

}  // namespace ag::detail
