#ifndef A2AMESH_RPC_WRITE_QUEUE_H_
#define A2AMESH_RPC_WRITE_QUEUE_H_

#include <cstddef>
#include <deque>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/support/status.h"

namespace a2amesh::rpc {

// Writes messages to one gRPC callback-API server reactor (a ServerWriteReactor
// or ServerBidiReactor) one at a time and in order, and finishes the call once
// the messages queued before Finish are written: every call ends in exactly one
// Finish, never with a write outstanding.
//
// Every reactor operation happens under the queue's mutex. That is safe because
// gRPC never runs reactions inline from StartWrite or Finish; the reactions
// (OnWriteDone, OnDone) must not hold locks of their own when they call in.
// Thread-safe.
template <typename Reactor, typename Message>
class WriteQueue {
 public:
  enum class Result { kQueued, kFull, kClosed };

  explicit WriteQueue(size_t max_queued) : max_queued_(max_queued) {}

  // Binds the reactor; writing starts now if messages are waiting.
  void Attach(Reactor* reactor) {
    absl::MutexLock lock(&mu_);
    reactor_ = reactor;
    WriteNextLocked();
  }

  // Queues `message`. kFull: max_queued are already waiting (nothing queued);
  // kClosed: the call is finishing.
  Result Write(Message message) {
    absl::MutexLock lock(&mu_);
    if (finish_requested_) {
      return Result::kClosed;
    }
    if (queue_.size() >= max_queued_) {
      return Result::kFull;
    }
    queue_.push_back(std::move(message));
    WriteNextLocked();
    return Result::kQueued;
  }

  // Finishes the call with `status` once what is queued is written, or at once
  // (dropping it) if `drop_queued`. Only the first Finish counts.
  void Finish(const grpc::Status& status, bool drop_queued = false) {
    absl::MutexLock lock(&mu_);
    if (finish_requested_) {
      return;
    }
    finish_requested_ = true;
    finish_status_ = status;
    if (drop_queued) {
      queue_.clear();
    }
    WriteNextLocked();
  }

  // The reactor's OnWriteDone. A failed write means the client is gone: the call
  // finishes with `status_if_failed`.
  void OnWriteDone(bool ok, const grpc::Status& status_if_failed) {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      queue_.clear();
      if (!finish_requested_) {
        finish_requested_ = true;
        finish_status_ = status_if_failed;
      }
    }
    WriteNextLocked();
  }

  // The reactor's OnDone: nothing touches the reactor after this returns.
  void Detach() {
    absl::MutexLock lock(&mu_);
    reactor_ = nullptr;
    finish_requested_ = true;
    queue_.clear();
  }

  bool finishing() const {
    absl::MutexLock lock(&mu_);
    return finish_requested_;
  }

  // Runs `op(reactor)` under the queue's mutex unless the call is finishing:
  // for a bidi reactor's StartRead, which must never follow Finish.
  template <typename Op>
  bool WithOpenReactor(Op op) {
    absl::MutexLock lock(&mu_);
    if (finish_requested_ || reactor_ == nullptr) {
      return false;
    }
    op(reactor_);
    return true;
  }

 private:
  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finished_ || reactor_ == nullptr) {
      return;
    }
    if (queue_.empty()) {
      if (finish_requested_) {
        finished_ = true;
        reactor_->Finish(finish_status_);
      }
      return;
    }
    current_ = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    reactor_->StartWrite(&current_);
  }

  const size_t max_queued_;
  mutable absl::Mutex mu_;
  Reactor* reactor_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::deque<Message> queue_ ABSL_GUARDED_BY(mu_);
  Message current_ ABSL_GUARDED_BY(mu_);  // being written
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status finish_status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace a2amesh::rpc

#endif  // A2AMESH_RPC_WRITE_QUEUE_H_
