// Ops that move elements without changing them: reshape (and view, flatten, unsqueeze,
// squeeze), permute and transpose, slice, concat and stack, index_select and gather. Each
// backward rule moves the gradient back to where the element came from, adding where one
// element went to several places.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "autograd/ops.hpp"
#include "autograd/ops/axes.hpp"
#include "autograd/ops/common.hpp"
#include "autograd/ops/elementwise.hpp"

namespace ag {
using detail::checked_axis;
using detail::input;

// The backward rules, each defined right after its forward.
static void reshape_backward(Tape& t, const Node& n);
static void permute_backward(Tape& t, const Node& n);
static void slice_backward(Tape& t, const Node& n);
static void join_backward(Tape& t, const Node& n);
static void index_select_backward(Tape& t, const Node& n);
static void gather_backward(Tape& t, const Node& n);

/// dx[i] += g[i], or with Fresh dx[i] = 0 + g[i] (dx unread): loops of restrict pointers the
/// compiler vectorizes.
template <bool Fresh>
static void add_into(const float* __restrict g, float* __restrict dx, std::size_t n) {
  if constexpr (Fresh)
    for (std::size_t i = 0; i < n; ++i) dx[i] = 0.0F + g[i];
  else
    for (std::size_t i = 0; i < n; ++i) dx[i] += g[i];
}

/// Product of s[begin, end).
static std::size_t span_size(const Shape& s, std::size_t begin, std::size_t end) {
  std::size_t n = 1;
  for (std::size_t d = begin; d < end; ++d) n *= s[d];
  return n;
}

/// s with a dimension of size n inserted before position `axis`.
static Shape with_inserted(const Shape& s, std::size_t axis, std::size_t n) {
  Shape out;
  for (std::size_t d = 0; d <= s.size(); ++d) {
    if (d == axis) out.push_back(n);
    if (d < s.size()) out.push_back(s[d]);
  }
  return out;
}

// ---- reshape: row-major order is unchanged, so the gradient is copied as is ----
// Both directions are a pass over the elements on all threads (the conv VAE's flatten and
// unflatten move [128, 3136] each way every step). The node writes its input's gradient
// fresh (Tape::sweep_backward): 0 + g as relu's rule writes it, the bits of adding g to zeros,
// without the zeros' pass and reading them back.

static Var reshape_op(const char* name, Var x, const Shape& shape) {
  if (numel(shape) != x.numel())
    throw ShapeError(fmt::format("{}: cannot reshape {} ({} elements) to {}", name, to_string(x.shape()),
                                 x.numel(), to_string(shape)));
  Tape& tape = x.tape();
  Node& out = tape.record(name, {x}, shape, reshape_backward);
  out.writes_fresh = true;
  const float* from = x.value().data();
  float* to = out.own_value.data();
  detail::elementwise_for(x.numel(), [from, to](std::size_t begin, std::size_t end) {
    std::copy(from + begin, from + end, to + begin);
  });
  return tape.last();
}
static void reshape_backward(Tape& t, const Node& n) {
  Node& x = input(t, n, 0);
  if (!x.requires_grad) return;
  const float* g = n.grad().data();
  float* dx = x.grad().data();
  const bool fresh = detail::fresh(n, 0);
  detail::elementwise_for(n.value().size(), [g, dx, fresh](std::size_t begin, std::size_t end) {
    if (fresh)
      add_into<true>(g + begin, dx + begin, end - begin);
    else
      add_into<false>(g + begin, dx + begin, end - begin);
  });
}

Var reshape(Var x, const Shape& shape) { return reshape_op("reshape", x, shape); }
Var view(Var x, const Shape& shape) { return reshape_op("view", x, shape); }

Var flatten(Var x, int start, int end) {
  const Shape& s = x.value().shape();
  const std::size_t rank = std::max<std::size_t>(s.size(), 1);
  const std::size_t a = checked_axis("flatten", start, rank), b = checked_axis("flatten", end, rank);
  if (a > b) throw ShapeError(fmt::format("flatten: start {} comes after end {}", start, end));
  if (s.empty()) return reshape_op("flatten", x, {1});
  Shape out(s.begin(), s.begin() + static_cast<long>(a));
  out.push_back(span_size(s, a, b + 1));
  out.insert(out.end(), s.begin() + static_cast<long>(b) + 1, s.end());
  return reshape_op("flatten", x, out);
}

Var unsqueeze(Var x, int axis) {
  const Shape& s = x.value().shape();
  return reshape_op("unsqueeze", x, with_inserted(s, checked_axis("unsqueeze", axis, s.size() + 1), 1));
}

Var squeeze(Var x, int axis) {
  Shape s = x.value().shape();
  const std::size_t a = checked_axis("squeeze", axis, s.size());
  if (s[a] == 1) s.erase(s.begin() + static_cast<long>(a));
  return reshape_op("squeeze", x, s);
}

// ---- permute: y[i_0, ..., i_n] = x[i at the positions dims says];  dx the same walk ----

struct PermuteAttrs {
  std::array<std::uint8_t, kMaxRank> dims;
};

/// The loop that reads x in the order of the permuted result.
static detail::Loop permuted_loop(const Shape& x, const std::array<std::uint8_t, kMaxRank>& dims) {
  const auto st = detail::strides_of(x);
  detail::Loop loop;
  for (std::size_t d = 0; d < x.size(); ++d) loop.push(x[dims[d]], st[dims[d]]);
  return loop;
}

Var permute(Var x, std::span<const int> dims) {
  const Shape& s = x.value().shape();
  if (dims.size() != s.size())
    throw ShapeError(fmt::format("permute: {} dimensions given for a tensor of rank {}", dims.size(), s.size()));
  PermuteAttrs a{};
  std::uint32_t seen = 0;
  Shape out(s.size());
  for (std::size_t d = 0; d < dims.size(); ++d) {
    const std::size_t from = checked_axis("permute", dims[d], s.size());
    if ((seen >> from) & 1U)
      throw ShapeError(fmt::format("permute: [{}] is not a permutation", fmt::join(dims, ", ")));
    seen |= 1U << from;
    a.dims[d] = static_cast<std::uint8_t>(from);
    out[d] = s[from];
  }
  Tape& tape = x.tape();
  Node& node = tape.record("permute", {x}, out, permute_backward);
  node.set_attrs(a);
  const float* px = x.value().data();
  float* y = node.own_value.data();
  std::size_t i = 0;
  detail::for_each_offset(permuted_loop(s, a.dims), [&](std::size_t off) { y[i++] = px[off]; });
  return tape.last();
}
static void permute_backward(Tape& t, const Node& n) {
  Node& x = input(t, n, 0);
  if (!x.requires_grad) return;
  const float* g = n.grad().data();
  float* dx = x.grad().data();
  std::size_t i = 0;
  detail::for_each_offset(permuted_loop(x.value().shape(), n.attrs<PermuteAttrs>().dims),
                          [&](std::size_t off) { dx[off] += g[i++]; });
}

Var permute(Var x, std::initializer_list<int> dims) {
  return permute(x, std::span<const int>(dims.begin(), dims.size()));
}

Var transpose(Var x, int a, int b) {
  const std::size_t rank = x.dim();
  std::array<int, kMaxRank> dims{};
  for (std::size_t d = 0; d < rank; ++d) dims[d] = static_cast<int>(d);
  std::swap(dims[checked_axis("transpose", a, rank)], dims[checked_axis("transpose", b, rank)]);
  return permute(x, std::span<const int>(dims.data(), rank));
}

Var transpose(Var x) {
  if (x.dim() < 2)
    throw ShapeError(fmt::format("transpose: {} has fewer than two dimensions", to_string(x.shape())));
  return transpose(x, -2, -1);
}

// ---- slice: indices [begin, end) along an axis; the gradient lands back there ----
// Seen as [outer, size, inner] with the axis in the middle: each of the `outer` blocks
// contributes (end - begin) * inner contiguous elements.

struct SliceAttrs {
  std::size_t axis, begin;
};

Var slice(Var x, int axis, std::size_t begin, std::size_t end) {
  const Shape& s = x.value().shape();
  const std::size_t a = checked_axis("slice", axis, s.size());
  // Python's x[..., begin:end], as PyTorch indexes: the range is cut to the axis, and an empty
  // one (begin >= end, or begin past the end) gives an empty result rather than an error.
  end = std::min(end, s[a]);
  begin = std::min(begin, end);
  Shape out_shape = s;
  out_shape[a] = end - begin;
  const std::size_t inner = span_size(s, a + 1, s.size()), outer = span_size(s, 0, a);
  const std::size_t width = (end - begin) * inner, row = s[a] * inner;
  Tape& tape = x.tape();
  Node& out = tape.record("slice", {x}, out_shape, slice_backward);
  out.set_attrs(SliceAttrs{a, begin});
  const float* px = x.value().data() + begin * inner;
  float* y = out.own_value.data();
  for (std::size_t o = 0; o < outer; ++o) std::copy(px + o * row, px + o * row + width, y + o * width);
  return tape.last();
}
static void slice_backward(Tape& t, const Node& n) {
  Node& x = input(t, n, 0);
  if (!x.requires_grad) return;
  const SliceAttrs a = n.attrs<SliceAttrs>();
  const Shape& s = x.value().shape();
  const std::size_t inner = span_size(s, a.axis + 1, s.size()), outer = span_size(s, 0, a.axis);
  const std::size_t width = n.value().shape()[a.axis] * inner, row = s[a.axis] * inner;
  const float* g = n.grad().data();
  float* dx = x.grad().data() + a.begin * inner;
  for (std::size_t o = 0; o < outer; ++o)
    for (std::size_t j = 0; j < width; ++j) dx[o * row + j] += g[o * width + j];
}

Var slice(Var x, std::size_t begin, std::size_t end) { return slice(x, -1, begin, end); }

// ---- concat and stack: the result is `outer` blocks, each the inputs' chunks in turn ----
// Both are the same copy: for concat along axis a, outer = product of the dimensions before
// a and a chunk is the rest of an input; stack adds a new axis, so a chunk is the rest too.

struct JoinAttrs {
  std::size_t outer;
};

static Var join(const char* name, std::span<const Var> xs, const Shape& out_shape, std::size_t outer) {
  // No blocks (a dimension of 0 before the axis) is one block of nothing: the forward and the
  // backward divide by it (the backward divided by 0: SIGFPE for stack of two [0, 2] on axis 1).
  outer = std::max<std::size_t>(outer, 1);
  Tape& tape = xs.front().tape();
  Node& out = tape.record(name, xs, out_shape, join_backward);
  out.set_attrs(JoinAttrs{outer});
  const std::size_t row = numel(out_shape) / outer;
  float* y = out.own_value.data();
  std::size_t offset = 0;
  for (const Var& x : xs) {
    const std::size_t chunk = x.numel() / outer;
    const float* px = x.value().data();
    for (std::size_t o = 0; o < outer; ++o) std::copy(px + o * chunk, px + (o + 1) * chunk, y + o * row + offset);
    offset += chunk;
  }
  return tape.last();
}
static void join_backward(Tape& t, const Node& n) {
  const std::size_t outer = n.attrs<JoinAttrs>().outer, row = n.value().size() / outer;
  const float* g = n.grad().data();
  std::size_t offset = 0;
  for (std::size_t k = 0; k < n.arity; ++k) {
    Node& x = input(t, n, static_cast<int>(k));
    const std::size_t chunk = x.value().size() / outer;
    if (x.requires_grad) {
      float* dx = x.grad().data();
      for (std::size_t o = 0; o < outer; ++o)
        for (std::size_t j = 0; j < chunk; ++j) dx[o * chunk + j] += g[o * row + offset + j];
    }
    offset += chunk;
  }
}

/// A node takes at most kMaxInputs inputs: longer lists are joined in groups, then the groups.
template <class JoinGroup>
static Var join_in_groups(std::span<const Var> xs, JoinGroup join_group) {
  if (xs.size() <= kMaxInputs) return join_group(xs);
  std::array<Var, kMaxInputs> groups;
  const std::size_t per = (xs.size() + kMaxInputs - 1) / kMaxInputs;
  std::size_t count = 0;
  for (std::size_t i = 0; i < xs.size(); i += per)
    groups[count++] = join_in_groups(xs.subspan(i, std::min(per, xs.size() - i)), join_group);
  return join_group(std::span<const Var>(groups.data(), count));
}

Var concat(std::span<const Var> xs, int axis) {
  if (xs.empty()) throw ShapeError("concat: no inputs");
  const Shape& first = xs.front().value().shape();
  const std::size_t a = checked_axis("concat", axis, first.size());
  for (const Var& x : xs) {
    const Shape& s = x.value().shape();
    bool fits = s.size() == first.size();
    for (std::size_t d = 0; fits && d < s.size(); ++d) fits = d == a || s[d] == first[d];
    if (!fits)
      throw ShapeError(fmt::format("concat: shapes {} and {} differ off axis {}", to_string(first), to_string(s), axis));
  }
  return join_in_groups(xs, [&](std::span<const Var> group) {
    Shape out = group.front().value().shape();
    out[a] = 0;
    for (const Var& x : group) out[a] += x.value().shape()[a];
    return join("concat", group, out, span_size(out, 0, a));
  });
}

Var concat(std::initializer_list<Var> xs, int axis) {
  return concat(std::span<const Var>(xs.begin(), xs.size()), axis);
}

Var concat(Var a, Var b) { return concat({a, b}, -1); }

Var stack(std::span<const Var> xs, int axis) {
  if (xs.empty()) throw ShapeError("stack: no inputs");
  const Shape& first = xs.front().value().shape();
  for (const Var& x : xs)
    if (x.value().shape() != first)
      throw ShapeError(fmt::format("stack: shapes {} and {} differ", to_string(first), to_string(x.value().shape())));
  const std::size_t a = checked_axis("stack", axis, first.size() + 1);
  // Groups of a long list are stacked first and then concatenated along the new axis.
  if (xs.size() > kMaxInputs) {
    std::array<Var, kMaxInputs> groups;
    const std::size_t per = (xs.size() + kMaxInputs - 1) / kMaxInputs;
    std::size_t count = 0;
    for (std::size_t i = 0; i < xs.size(); i += per)
      groups[count++] = stack(xs.subspan(i, std::min(per, xs.size() - i)), static_cast<int>(a));
    return concat(std::span<const Var>(groups.data(), count), static_cast<int>(a));
  }
  return join("stack", xs, with_inserted(first, a, xs.size()), span_size(first, 0, a));
}

Var stack(std::initializer_list<Var> xs, int axis) {
  return stack(std::span<const Var>(xs.begin(), xs.size()), axis);
}

// ---- index_select and gather: indices are whole numbers held in a tensor ----

/// indices[i] as an index below `size`, or a ShapeError naming the op.
static std::size_t checked_index(const char* op, float v, std::size_t size) {
  if (!(v >= 0.0F) || v != std::floor(v) || v >= static_cast<float>(size))
    throw ShapeError(fmt::format("{}: index {} is not a whole number in [0, {})", op, v, size));
  return static_cast<std::size_t>(v);
}

struct IndexAttrs {
  std::size_t axis;
};

// index_select, as [outer, size, inner] -> [outer, K, inner]: y[o, k, :] = x[o, idx[k], :]

Var index_select(Var x, int axis, Var indices) {
  const Shape& s = x.value().shape();
  const std::size_t a = checked_axis("index_select", axis, s.size());
  if (indices.dim() != 1)
    throw ShapeError(fmt::format("index_select: indices {} must be one-dimensional", to_string(indices.shape())));
  const Array& idx = indices.value();
  for (float v : idx) checked_index("index_select", v, s[a]);
  Shape out_shape = s;
  out_shape[a] = idx.size();
  const std::size_t inner = span_size(s, a + 1, s.size()), outer = span_size(s, 0, a), size = s[a];
  Tape& tape = x.tape();
  Node& out = tape.record("index_select", {x, indices}, out_shape, index_select_backward);
  out.set_attrs(IndexAttrs{a});
  const float* px = x.value().data();
  float* y = out.own_value.data();
  for (std::size_t o = 0; o < outer; ++o)
    for (std::size_t k = 0; k < idx.size(); ++k) {
      const float* from = px + (o * size + static_cast<std::size_t>(idx.data()[k])) * inner;
      std::copy(from, from + inner, y + (o * idx.size() + k) * inner);
    }
  return tape.last();
}
static void index_select_backward(Tape& t, const Node& n) {
  Node& x = input(t, n, 0);
  if (!x.requires_grad) return;
  const std::size_t a = n.attrs<IndexAttrs>().axis;
  const Shape& s = x.value().shape();
  const std::size_t inner = span_size(s, a + 1, s.size()), outer = span_size(s, 0, a), size = s[a];
  const Array& idx = input(t, n, 1).value();
  const std::size_t k_count = idx.size();
  const float* g = n.grad().data();
  float* dx = x.grad().data();
  for (std::size_t o = 0; o < outer; ++o)
    for (std::size_t k = 0; k < k_count; ++k) {
      const std::size_t from = static_cast<std::size_t>(idx.data()[k]);
      const float* gk = g + (o * k_count + k) * inner;
      float* dk = dx + (o * size + from) * inner;
      for (std::size_t j = 0; j < inner; ++j) dk[j] += gk[j];
    }
}

// gather: y[i...] = x[i... with i_axis replaced by index[i...]]. Walked over index's shape,
// reading x with x's strides; the loop visits index's elements in order.
static detail::Loop gather_loop(const Shape& x, const Shape& index, std::size_t axis) {
  const auto st = detail::strides_of(x);
  detail::Loop loop;  // no merging: each dimension keeps x's stride (index may be smaller)
  loop.rank = index.size();
  for (std::size_t d = 0; d < index.size(); ++d) {
    loop.size[d] = index[d];
    loop.stride[d] = d == axis ? 0 : st[d];
  }
  return loop;
}

Var gather(Var x, int axis, Var index) {
  const Shape& s = x.value().shape();
  const std::size_t a = checked_axis("gather", axis, s.size());
  const Shape& is = index.value().shape();
  bool fits = is.size() == s.size();
  for (std::size_t d = 0; fits && d < s.size(); ++d) fits = d == a || is[d] <= s[d];
  if (!fits)
    throw ShapeError(fmt::format("gather: index {} must have the rank of {} and no larger size off axis {}",
                                 to_string(is), to_string(s), axis));
  for (float v : index.value()) checked_index("gather", v, s[a]);
  Tape& tape = x.tape();
  Node& out = tape.record("gather", {x, index}, is, gather_backward);
  out.set_attrs(IndexAttrs{a});
  const float* px = x.value().data();
  const float* idx = index.value().data();
  const std::size_t step = detail::strides_of(s)[a];
  float* y = out.own_value.data();
  std::size_t i = 0;
  detail::for_each_offset(gather_loop(s, is, a), [&](std::size_t off) {
    y[i] = px[off + static_cast<std::size_t>(idx[i]) * step];
    ++i;
  });
  return tape.last();
}
static void gather_backward(Tape& t, const Node& n) {
  Node& x = input(t, n, 0);
  if (!x.requires_grad) return;
  const std::size_t a = n.attrs<IndexAttrs>().axis;
  const Array& idx = input(t, n, 1).value();
  const std::size_t step = detail::strides_of(x.value().shape())[a];
  const float* g = n.grad().data();
  float* dx = x.grad().data();
  std::size_t i = 0;
  detail::for_each_offset(gather_loop(x.value().shape(), idx.shape(), a), [&](std::size_t off) {
    dx[off + static_cast<std::size_t>(idx.data()[i]) * step] += g[i];
    ++i;
  });
}

}  // namespace ag
