#ifndef A2AMESH_CORE_ALLOCATOR_H_
#define A2AMESH_CORE_ALLOCATOR_H_

#include <string>

namespace a2amesh {

// The allocator this process runs with: "jemalloc" when meshd is linked with it
// (-DA2AMESH_MALLOC=jemalloc, the default), else "glibc".
std::string AllocatorName();

// Sets the allocator up for a long-running server (with glibc: a fixed mmap
// threshold, so that large blocks go back to the system as they are freed).
// Call it once, first thing in main.
void ConfigureAllocator();

// Gives the memory the allocator holds free back to the system: what a load
// peak, removed tasks or refused large inputs left behind would otherwise stay
// in the process's RSS. jemalloc purges every arena; glibc trims its heaps
// (malloc_trim). May take a few milliseconds; call it from housekeeping.
void ReleaseFreeMemory();

}  // namespace a2amesh

#endif  // A2AMESH_CORE_ALLOCATOR_H_
