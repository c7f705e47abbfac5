#ifndef A2AMESH_TASKS_TASK_STATE_H_
#define A2AMESH_TASKS_TASK_STATE_H_

#include <optional>

#include "a2amesh/task_store.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "lf/a2a/v1/a2a.pb.h"

// The A2A task state machine and how events change a Task. Pure functions,
// shared by the live task manager and by recovery's replay of the event log.
namespace a2amesh::tasks {

// OK if a task in `from` may move to `to`; FAILED_PRECONDITION naming both
// otherwise. Terminal states never change; nothing returns to SUBMITTED.
absl::Status CheckTransition(lf::a2a::v1::TaskState from, lf::a2a::v1::TaskState to);

// True for a status update into a terminal or interrupted state: the event that
// ends a stream and answers a blocking SendMessage.
bool IsFinalEvent(const lf::a2a::v1::StreamResponse& event);

// A direct reply (A2A's "MAY return a direct Message"): an agent answered a
// new task's first message with one Message instead of working on a task
// (AgentHost TaskReply). Inside the node it travels as the task's final event,
// a COMPLETED status update carrying the message, marked with this metadata
// key (true), so that it ends the task, frees the agent and crosses handoffs
// like any final event; a subscriber that can answer with a Message (a
// blocking SendMessage, a stream) sends the message alone.
inline constexpr char kDirectReplyKey[] = "a2amesh/direct-reply";
bool IsDirectReply(const lf::a2a::v1::StreamResponse& event);
lf::a2a::v1::StreamResponse DirectReplyEvent(lf::a2a::v1::Message message);
// The reply's message as the client receives it: no task id (there is no
// task), the task's context id.
lf::a2a::v1::Message DirectReplyMessage(const lf::a2a::v1::StreamResponse& event);
// Whether `task` may still be answered with a direct reply: nothing but its
// first message has happened to it (SUBMITTED, one message, no artifact).
bool AwaitsFirstAnswer(const lf::a2a::v1::Task& task);

// Applies one logged event to `task`:
//  - status_update: the new status replaces the old and its message, if any, is
//    also appended to history (so history reads in order: the client's messages
//    and the agent's, as they came); metadata is merged;
//  - artifact_update: replaces the artifact with the same id, or appends its
//    parts to it when `append` is set (adding it if it is new);
//  - message: appended to history.
// Does not check transitions (see NormalizeAgentEvent).
absl::Status ApplyEvent(const lf::a2a::v1::StreamResponse& event, lf::a2a::v1::Task* task);

// Validates an event an agent sent for `task` and fills in what the node owns:
// task and context ids, message ids and roles, the status timestamp. Refuses an
// event that names another task or context, an illegal transition, a missing
// artifact id or empty parts, with INVALID_ARGUMENT or FAILED_PRECONDITION
// naming the field.
absl::Status NormalizeAgentEvent(const lf::a2a::v1::Task& task, absl::Time now,
                                 lf::a2a::v1::StreamResponse* event);

// The current Task of a stored task: its snapshot with the logged events replayed.
absl::StatusOr<lf::a2a::v1::Task> Materialize(const StoredTask& stored);

// Keeps the last `history_length` messages of the history (all if unset, none
// if 0), as GetTask, ListTasks and SendMessage return them.
void TrimHistory(std::optional<int> history_length, lf::a2a::v1::Task* task);

// A status timestamp for `time`, at millisecond precision (as A2A recommends).
google::protobuf::Timestamp StatusTimestamp(absl::Time time);

// "TASK_STATE_WORKING" -> "working", for messages meant for people.
absl::string_view StateName(lf::a2a::v1::TaskState state);

}  // namespace a2amesh::tasks

#endif  // A2AMESH_TASKS_TASK_STATE_H_
