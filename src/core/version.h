#ifndef A2AMESH_CORE_VERSION_H_
#define A2AMESH_CORE_VERSION_H_

namespace a2amesh {

// The a2a-mesh release these binaries belong to (CMake's PROJECT_VERSION).
const char* Version();
// The git commit they were built from (12 hex digits, "-dirty" if the sources
// differed from it), or "unknown" when built outside a git checkout.
const char* Revision();

}  // namespace a2amesh

#endif  // A2AMESH_CORE_VERSION_H_
