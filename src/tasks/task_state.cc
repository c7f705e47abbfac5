#include "tasks/task_state.h"

#include "absl/strings/str_cat.h"
#include "core/a2a_error.h"
#include "core/ids.h"
#include "core/status_macros.h"
#include "google/protobuf/util/time_util.h"

namespace a2amesh::tasks {

using google::protobuf::util::TimeUtil;
using lf::a2a::v1::Artifact;
using lf::a2a::v1::Message;
using lf::a2a::v1::StreamResponse;
using lf::a2a::v1::Task;
using lf::a2a::v1::TaskState;

google::protobuf::Timestamp StatusTimestamp(absl::Time time) {
  return TimeUtil::MillisecondsToTimestamp(absl::ToUnixMillis(time));
}

absl::string_view StateName(TaskState state) {
  switch (state) {
    case lf::a2a::v1::TASK_STATE_SUBMITTED:
      return "submitted";
    case lf::a2a::v1::TASK_STATE_WORKING:
      return "working";
    case lf::a2a::v1::TASK_STATE_COMPLETED:
      return "completed";
    case lf::a2a::v1::TASK_STATE_FAILED:
      return "failed";
    case lf::a2a::v1::TASK_STATE_CANCELED:
      return "canceled";
    case lf::a2a::v1::TASK_STATE_INPUT_REQUIRED:
      return "input-required";
    case lf::a2a::v1::TASK_STATE_REJECTED:
      return "rejected";
    case lf::a2a::v1::TASK_STATE_AUTH_REQUIRED:
      return "auth-required";
    default:
      return "unspecified";
  }
}

absl::Status CheckTransition(TaskState from, TaskState to) {
  if (to == lf::a2a::v1::TASK_STATE_UNSPECIFIED || !lf::a2a::v1::TaskState_IsValid(to)) {
    return absl::InvalidArgumentError("status.state: must be a valid task state");
  }
  if (IsTerminalState(from)) {
    return absl::FailedPreconditionError(absl::StrCat("the task is already ", StateName(from),
                                                      "; it cannot become ", StateName(to)));
  }
  if (to == lf::a2a::v1::TASK_STATE_SUBMITTED) {
    return absl::FailedPreconditionError(absl::StrCat(
        "a ", StateName(from), " task cannot go back to submitted (only the node submits)"));
  }
  if (to == lf::a2a::v1::TASK_STATE_REJECTED && from != lf::a2a::v1::TASK_STATE_SUBMITTED &&
      from != lf::a2a::v1::TASK_STATE_WORKING) {
    return absl::FailedPreconditionError(
        absl::StrCat("a ", StateName(from), " task cannot be rejected"));
  }
  return absl::OkStatus();
}

bool IsFinalEvent(const StreamResponse& event) {
  if (!event.has_status_update()) {
    return false;
  }
  TaskState state = event.status_update().status().state();
  return IsTerminalState(state) || IsInterruptedState(state);
}

namespace {

void MergeMetadata(const google::protobuf::Struct& from, google::protobuf::Struct* to) {
  for (const auto& [key, value] : from.fields()) {
    (*to->mutable_fields())[key] = value;
  }
}

Artifact* FindArtifact(Task* task, const std::string& id) {
  for (Artifact& artifact : *task->mutable_artifacts()) {
    if (artifact.artifact_id() == id) {
      return &artifact;
    }
  }
  return nullptr;
}

absl::Status CheckParts(absl::string_view field,
                        const google::protobuf::RepeatedPtrField<lf::a2a::v1::Part>& parts) {
  if (parts.empty()) {
    return InvalidFieldError(field, "must hold at least one part");
  }
  for (int i = 0; i < parts.size(); ++i) {
    if (parts[i].content_case() == lf::a2a::v1::Part::CONTENT_NOT_SET) {
      return InvalidFieldError(absl::StrCat(field, "[", i, "]"),
                               "has no content (text, raw, url or data)");
    }
  }
  return absl::OkStatus();
}

absl::Status CheckIds(absl::string_view field, const Task& task, std::string* task_id,
                      std::string* context_id) {
  if (!task_id->empty() && *task_id != task.id()) {
    return InvalidFieldError(absl::StrCat(field, ".task_id"),
                             absl::StrCat("names task ", *task_id, ", not ", task.id()));
  }
  if (!context_id->empty() && *context_id != task.context_id()) {
    return InvalidFieldError(
        absl::StrCat(field, ".context_id"),
        absl::StrCat("names context ", *context_id, ", not the task's ", task.context_id()));
  }
  *task_id = task.id();
  *context_id = task.context_id();
  return absl::OkStatus();
}

absl::Status NormalizeAgentMessage(absl::string_view field, const Task& task, Message* message) {
  A2AMESH_RETURN_IF_ERROR(
      CheckIds(field, task, message->mutable_task_id(), message->mutable_context_id()));
  A2AMESH_RETURN_IF_ERROR(CheckParts(absl::StrCat(field, ".parts"), message->parts()));
  if (message->message_id().empty()) {
    message->set_message_id(NewUuid());
  }
  if (message->role() == lf::a2a::v1::ROLE_UNSPECIFIED) {
    message->set_role(lf::a2a::v1::ROLE_AGENT);
  } else if (message->role() != lf::a2a::v1::ROLE_AGENT) {
    return InvalidFieldError(absl::StrCat(field, ".role"), "an agent's messages are ROLE_AGENT");
  }
  return absl::OkStatus();
}

}  // namespace

bool IsDirectReply(const StreamResponse& event) {
  if (!event.has_status_update() || !event.status_update().has_metadata()) return false;
  const auto& fields = event.status_update().metadata().fields();
  auto it = fields.find(kDirectReplyKey);
  return it != fields.end() && it->second.bool_value();
}

StreamResponse DirectReplyEvent(Message message) {
  StreamResponse event;
  auto* update = event.mutable_status_update();
  update->mutable_status()->set_state(lf::a2a::v1::TASK_STATE_COMPLETED);
  *update->mutable_status()->mutable_message() = std::move(message);
  (*update->mutable_metadata()->mutable_fields())[kDirectReplyKey].set_bool_value(true);
  return event;
}

Message DirectReplyMessage(const StreamResponse& event) {
  Message message = event.status_update().status().message();
  message.clear_task_id();
  if (message.context_id().empty()) message.set_context_id(event.status_update().context_id());
  return message;
}

bool AwaitsFirstAnswer(const Task& task) {
  return task.status().state() == lf::a2a::v1::TASK_STATE_SUBMITTED && task.history_size() == 1 &&
         task.artifacts_size() == 0;
}

absl::Status ApplyEvent(const StreamResponse& event, Task* task) {
  switch (event.payload_case()) {
    case StreamResponse::kStatusUpdate: {
      const auto& update = event.status_update();
      if (update.status().has_message()) {
        const Message& message = update.status().message();
        bool seen = task->history_size() > 0 &&
                    task->history(task->history_size() - 1).message_id() == message.message_id();
        if (!seen) {
          *task->add_history() = message;
        }
      }
      *task->mutable_status() = update.status();
      if (update.has_metadata()) {
        MergeMetadata(update.metadata(), task->mutable_metadata());
      }
      return absl::OkStatus();
    }
    case StreamResponse::kArtifactUpdate: {
      const auto& update = event.artifact_update();
      Artifact* existing = FindArtifact(task, update.artifact().artifact_id());
      if (existing == nullptr) {
        *task->add_artifacts() = update.artifact();
      } else if (update.append()) {
        for (const auto& part : update.artifact().parts()) {
          *existing->add_parts() = part;
        }
        if (update.artifact().has_metadata()) {
          MergeMetadata(update.artifact().metadata(), existing->mutable_metadata());
        }
      } else {
        *existing = update.artifact();
      }
      return absl::OkStatus();
    }
    case StreamResponse::kMessage:
      *task->add_history() = event.message();
      return absl::OkStatus();
    case StreamResponse::kTask:
    case StreamResponse::PAYLOAD_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError(
      "event: must be a status_update, an artifact_update or a message");
}

absl::Status NormalizeAgentEvent(const Task& task, absl::Time now, StreamResponse* event) {
  switch (event->payload_case()) {
    case StreamResponse::kStatusUpdate: {
      auto* update = event->mutable_status_update();
      A2AMESH_RETURN_IF_ERROR(
          CheckIds("status_update", task, update->mutable_task_id(), update->mutable_context_id()));
      if (!update->has_status()) {
        return InvalidFieldError("status_update.status", "is required");
      }
      absl::Status transition = CheckTransition(task.status().state(), update->status().state());
      if (!transition.ok()) {
        return absl::Status(transition.code(),
                            absl::StrCat("status_update.status.state: ", transition.message()));
      }
      if (update->status().has_message()) {
        A2AMESH_RETURN_IF_ERROR(NormalizeAgentMessage("status_update.status.message", task,
                                                      update->mutable_status()->mutable_message()));
      }
      if (!update->status().has_timestamp()) {
        *update->mutable_status()->mutable_timestamp() = StatusTimestamp(now);
      }
      return absl::OkStatus();
    }
    case StreamResponse::kArtifactUpdate: {
      auto* update = event->mutable_artifact_update();
      A2AMESH_RETURN_IF_ERROR(CheckIds("artifact_update", task, update->mutable_task_id(),
                                       update->mutable_context_id()));
      if (IsTerminalState(task.status().state())) {
        return absl::FailedPreconditionError(absl::StrCat("artifact_update: the task is already ",
                                                          StateName(task.status().state())));
      }
      if (!update->has_artifact()) {
        return InvalidFieldError("artifact_update.artifact", "is required");
      }
      if (update->artifact().artifact_id().empty()) {
        return InvalidFieldError("artifact_update.artifact.artifact_id", "is required");
      }
      return CheckParts("artifact_update.artifact.parts", update->artifact().parts());
    }
    case StreamResponse::kMessage:
      if (IsTerminalState(task.status().state())) {
        return absl::FailedPreconditionError(
            absl::StrCat("message: the task is already ", StateName(task.status().state())));
      }
      return NormalizeAgentMessage("message", task, event->mutable_message());
    case StreamResponse::kTask:
      return InvalidFieldError("event.task",
                               "agents send status, artifact and message events; "
                               "the node owns the Task");
    case StreamResponse::PAYLOAD_NOT_SET:
      break;
  }
  return InvalidFieldError("event", "is empty");
}

absl::StatusOr<Task> Materialize(const StoredTask& stored) {
  Task task = stored.snapshot;
  for (const StoredEvent& event : stored.events) {
    A2AMESH_RETURN_IF_ERROR(ApplyEvent(event.event, &task));
  }
  return task;
}

void TrimHistory(std::optional<int> history_length, Task* task) {
  if (!history_length.has_value()) {
    return;
  }
  int keep = std::max(0, *history_length);
  int size = task->history_size();
  if (size > keep) {
    task->mutable_history()->DeleteSubrange(0, size - keep);
  }
}

}  // namespace a2amesh::tasks
