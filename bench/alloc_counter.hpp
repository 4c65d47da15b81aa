// Counts heap allocations in the whole program, by replacing the global operator new.
// Link alloc_counter.cpp into a program to use it (benchmarks and the allocation test);
// the library itself never does.
#pragma once

#include <cstddef>

namespace bench {

/// Allocations (calls to any operator new) since the program started.
std::size_t allocation_count();

}  // namespace bench
