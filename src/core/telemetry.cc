#include "core/telemetry.h"

namespace a2amesh {

Telemetry& NoTelemetry() {
  static Telemetry* const none = new Telemetry();
  return *none;
}

}  // namespace a2amesh
