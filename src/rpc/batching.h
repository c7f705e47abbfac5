#ifndef A2AMESH_RPC_BATCHING_H_
#define A2AMESH_RPC_BATCHING_H_

#include <cstddef>
#include <deque>
#include <utility>

namespace a2amesh::rpc {

// Limits of one batch: a stream message must stay well under the receiver's
// gRPC message size limit (4 MiB by default).
inline constexpr size_t kMaxBatchMessages = 256;
inline constexpr size_t kMaxBatchBytes = 1 << 20;

// A WriteQueue Coalesce for the AgentHost stream messages (AgentToNode,
// NodeToAgent), whose `batch` member carries `repeated <Message> messages`:
// packs the messages at the front of `queue` for which `batchable(message)`
// holds into one batch, up to the limits above. Returns false (write the
// front message alone) when fewer than two can go together.
template <typename Message, typename Batchable>
bool CoalesceIntoBatch(std::deque<Message>& queue, Message* merged, Batchable batchable) {
  if (queue.size() < 2 || !batchable(queue[0]) || !batchable(queue[1])) {
    return false;
  }
  merged->Clear();
  auto* messages = merged->mutable_batch()->mutable_messages();
  size_t bytes = 0;
  while (!queue.empty() && static_cast<size_t>(messages->size()) < kMaxBatchMessages &&
         batchable(queue.front())) {
    const size_t size = queue.front().ByteSizeLong();
    if (!messages->empty() && bytes + size > kMaxBatchBytes) {
      break;
    }
    bytes += size;
    *messages->Add() = std::move(queue.front());
    queue.pop_front();
  }
  return true;
}

}  // namespace a2amesh::rpc

#endif  // A2AMESH_RPC_BATCHING_H_
