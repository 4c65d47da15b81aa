// Array: the storage every value and gradient lives in.
//
// Every tensor in this framework is a row-major float32 matrix of shape [rows, cols]:
// a batch of 128 images is [128, 784], a bias is a row vector [1, 400], a per-example
// loss is a column [128, 1] and a scalar loss is [1, 1]. Keeping one rank makes
// broadcasting, slicing and the GEMM kernels simple; the datasets layer reads IDX files
// of any rank and flattens each example into a row.
#pragma once

#include <array>
#include <cstddef>
#include <stdexcept>
#include <string>

#include <vector>

#include <new>

#include <xtensor/xtensor.hpp>

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
using Array = xt::xtensor_container<Storage, 2, xt::layout_type::row_major>;
using Shape = std::array<std::size_t, 2>;

inline Shape shape_of(const Array& a) { return {a.shape()[0], a.shape()[1]}; }

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
