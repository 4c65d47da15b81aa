// Array: the storage every value and gradient lives in.
//
// An Array is a row-major float32 tensor of any rank (in practice 1 to 4): a batch of 128
// images is [128, 784] or [128, 1, 28, 28], a bias is [1, 400], a scalar loss [1, 1]. It is
// xtensor's dynamic-rank container over our cache-aligned storage, with a shape type that
// holds up to four dimensions inline, so a shape is never a heap allocation.
//
//   ag::Array a({128, 784});               // zeros of that shape (a list of sizes is a shape)
//   ag::Array b{{1.0F, 2.0F}, {3.0F, 4.0F}};  // [2, 2] from nested values
//   ag::Array c{1.0F, 2.0F, 3.0F};         // [3]: a flat list of floats is a vector
#pragma once

#include <concepts>
#include <cstddef>
#include <initializer_list>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>

namespace ag {

/// Cache-line (64-byte) aligned memory from the aligned operator new, so that SIMD loads
/// never straddle lines and allocation counters (bench/alloc_counter) see every array.
template <class T>
struct CacheAlignedAllocator {
  using value_type = T;
  static constexpr std::align_val_t kAlign{64};
  CacheAlignedAllocator() = default;
  template <class U>
  CacheAlignedAllocator(const CacheAlignedAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), kAlign)); }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, kAlign); }
  template <class U>
  bool operator==(const CacheAlignedAllocator<U>&) const noexcept { return true; }
};

/// Storage: a std::vector, cache-line aligned. A vector keeps its capacity when it
/// shrinks, so a buffer that held a full batch takes the smaller last batch of an epoch
/// and then the full size again without touching the heap.
using Storage = std::vector<float, CacheAlignedAllocator<float>>;

/// A shape: the size of each dimension, outermost first. Up to four are stored inline.
using Shape = xt::svector<std::size_t, 4>;

}  // namespace ag

namespace xt {
// Shape equality, inline. xtensor's operator== for svectors is std::equal, which libstdc++
// turns into a call of memcmp: that cost more than comparing the two or three extents of a
// typical shape, and was a quarter of a 1-element op's time on the tape. Non-templates, these
// win overload resolution over xtensor's templates for every comparison of two ag::Shape.
inline bool operator==(const ag::Shape& a, const ag::Shape& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t d = 0; d < a.size(); ++d)
    if (a[d] != b[d]) return false;
  return true;
}
inline bool operator!=(const ag::Shape& a, const ag::Shape& b) { return !(a == b); }
}  // namespace xt

namespace ag {

/// The highest rank the ops accept (their index arithmetic uses fixed-size arrays).
inline constexpr std::size_t kMaxRank = 8;

using ArrayBase = xt::xarray_container<Storage, xt::layout_type::row_major, Shape>;

/// xtensor's container, with one change to its constructors: a braced list of integers is
/// a shape (`Array({rows, cols})`), as it was when every array was a matrix; xtensor alone
/// would read it as a vector of those values.
class Array : public ArrayBase {
 public:
  Array() = default;
  Array(const Array&) = default;
  Array(Array&&) noexcept = default;
  Array& operator=(const Array&) = default;
  Array& operator=(Array&&) noexcept = default;
  Array(const ArrayBase& a) : ArrayBase(a) {}
  Array(ArrayBase&& a) : ArrayBase(std::move(a)) {}
  using ArrayBase::operator=;

  /// Zeros of the given shape.
  explicit Array(const Shape& shape) : ArrayBase(shape) {}
  Array(std::initializer_list<std::size_t> shape) : ArrayBase(Shape(shape)) {}
  /// A vector of the given values. (A template, so that a list of integers is never taken
  /// for one: it is a shape.)
  template <std::same_as<float> T>
  Array(std::initializer_list<T> values) : ArrayBase(values) {}
  Array(xt::nested_initializer_list_t<float, 2> values) : ArrayBase(values) {}
  Array(xt::nested_initializer_list_t<float, 3> values) : ArrayBase(values) {}
  Array(xt::nested_initializer_list_t<float, 4> values) : ArrayBase(values) {}
  /// Evaluates an xtensor expression.
  template <class E>
  Array(const xt::xexpression<E>& e) : ArrayBase(e) {}

  static Array from_shape(const Shape& shape) { return Array(shape); }
};

inline const Shape& shape_of(const Array& a) { return a.shape(); }

/// The number of elements of an array of this shape (1 for rank 0).
inline std::size_t numel(const Shape& s) {
  std::size_t n = 1;
  for (std::size_t d : s) n *= d;
  return n;
}

/// "[128, 784]"
std::string to_string(const Shape& s);
/// The elements: "{{1, 2}, {3, 4}}", or past `max_elements` the first few in row-major order
/// and the count, "{0.1, 0.2, ...} (784 values)".
std::string to_string(const Array& a, std::size_t max_elements = 64);

/// Thrown when an op is given operands whose shapes do not fit; raised while the graph
/// is being built, so the message names the op and the shapes it was given.
class ShapeError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

}  // namespace ag

// xtensor recognises its expressions by "E derives from xexpression<E>"; ag::Array derives
// from xexpression<ArrayBase>, so say that it is one (arithmetic on Arrays builds xtensor
// expressions as on any xtensor container).
namespace xt::detail {
template <>
struct is_crtp_base_of_impl<xt::xexpression, ag::Array> : std::true_type {};
}  // namespace xt::detail
