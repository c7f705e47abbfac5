#ifndef A2AMESH_CORE_IDS_H_
#define A2AMESH_CORE_IDS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace a2amesh {

// A random (version 4) UUID in its canonical lowercase text form. Thread-safe.
std::string NewUuid();

// A time-ordered (version 7, RFC 9562) UUID: 48 bits of Unix milliseconds,
// then 74 random bits. Ids made later sort later, so the store's indexes grow
// at their right edge instead of touching a random page per new task.
// Thread-safe.
std::string NewTimeOrderedUuid(absl::Time now);

// Task ids carry the node that owns the task: "<node-id>~<uuid>", with a
// time-ordered UUID made at `now`. Any node can find a task's owner from its
// id alone.
inline constexpr char kTaskIdSeparator = '~';
std::string MakeTaskId(absl::string_view node_id, absl::Time now);

// The owning node of `task_id`, or "" if the id was not made by MakeTaskId.
absl::string_view TaskIdOwner(absl::string_view task_id);

// Node ids: 1-63 characters of [A-Za-z0-9._-], starting with a letter or digit.
// (Kubernetes pod names qualify.)
absl::Status ValidateNodeId(absl::string_view node_id);

// Agent ids: 1-64 characters of [a-z0-9._-], starting with a letter or digit.
absl::Status ValidateAgentId(absl::string_view agent_id);

// A valid agent id made from a free-form name ("Echo Agent" -> "echo-agent"), or
// "" if nothing usable remains.
std::string AgentIdFromName(absl::string_view name);

}  // namespace a2amesh

#endif  // A2AMESH_CORE_IDS_H_
