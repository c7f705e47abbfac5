#include "core/version.h"

#include "core/revision.h"  // generated: cmake/Revision.cmake

namespace a2amesh {

const char* Version() { return A2AMESH_VERSION; }

const char* Revision() { return A2AMESH_REVISION; }

}  // namespace a2amesh
