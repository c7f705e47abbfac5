#include "core/version.h"

namespace a2amesh {

const char* Version() { return A2AMESH_VERSION; }

}  // namespace a2amesh
