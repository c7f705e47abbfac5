#include "core/allocator.h"

#include <malloc.h>

#include <cstddef>
#include <string>

// Both allocators' controls are weak references. jemalloc's mallctl is null
// unless the process is linked with jemalloc; glibc's malloc_trim and mallopt
// are weak so that a fully static link with jemalloc does not pull glibc's
// malloc in beside it (the two would define malloc twice).
extern "C" int mallctl(const char* name, void* oldp, size_t* oldlenp, void* newp, size_t newlen)
    __attribute__((weak));
#pragma weak malloc_trim
#pragma weak mallopt

namespace a2amesh {
namespace {

bool Jemalloc() { return mallctl != nullptr; }

}  // namespace

std::string AllocatorName() { return Jemalloc() ? "jemalloc" : "glibc"; }

void ConfigureAllocator() {
  if (Jemalloc() || mallopt == nullptr) return;
  // glibc raises its mmap threshold after each large free, up to 32 MiB: then
  // large requests (a body of megabytes, refused or not) come from the heap
  // and their pages stay in the process. A fixed threshold keeps allocations
  // over 256 KiB in mmap, returned as they are freed (measured:
  // tests/e2e/memory_return_e2e_test.cc); what small allocations leave free,
  // ReleaseFreeMemory trims.
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
}

void ReleaseFreeMemory() {
  if (Jemalloc()) {
    // "arena.<MALLCTL_ARENAS_ALL>.purge": every arena's unused dirty pages.
    mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0);
  } else if (malloc_trim != nullptr) {
    malloc_trim(0);
  }
}

}  // namespace a2amesh
