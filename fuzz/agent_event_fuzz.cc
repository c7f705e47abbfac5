// Events as an agent (or a peer running a turn) sends them, applied to a task
// by the A2A state machine: whatever they say, a terminal task stays terminal
// and the task keeps its id.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "a2amesh/task_store.h"
#include "a2amesh/v1/agent_host.pb.h"
#include "absl/time/clock.h"
#include "tasks/task_state.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  a2amesh::v1::AgentToNodeBatch batch;
  if (!batch.ParseFromArray(data, static_cast<int>(size))) return 0;
  lf::a2a::v1::Task task;
  task.set_id("n1~fuzz");
  task.set_context_id("ctx");
  task.mutable_status()->set_state(lf::a2a::v1::TASK_STATE_SUBMITTED);
  for (int i = 0; i < batch.messages_size() && i < 64; ++i) {
    const a2amesh::v1::AgentToNode& message = batch.messages(i);
    if (!message.has_update()) continue;
    lf::a2a::v1::StreamResponse event = message.update().event();
    const bool was_terminal = a2amesh::IsTerminalState(task.status().state());
    if (!a2amesh::tasks::NormalizeAgentEvent(task, absl::Now(), &event).ok()) continue;
    if (!a2amesh::tasks::ApplyEvent(event, &task).ok()) continue;
    if (was_terminal) std::abort();  // nothing applies after the end
    if (task.id() != "n1~fuzz") std::abort();
    (void)a2amesh::tasks::IsFinalEvent(event);
  }
  return 0;
}
