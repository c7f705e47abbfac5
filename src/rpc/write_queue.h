#ifndef A2AMESH_RPC_WRITE_QUEUE_H_
#define A2AMESH_RPC_WRITE_QUEUE_H_

#include <cstddef>
#include <deque>
#include <functional>
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
// Messages that queue while a write is in flight may be coalesced into one
// write (SetCoalesce), and writing may be held back while a burst of messages
// is produced (Hold/Release), so that a burst goes out as one message.
//
// Every reactor operation happens under the queue's mutex. That is safe because
// gRPC never runs reactions inline from StartWrite or Finish; the reactions
// (OnWriteDone, OnDone) must not hold locks of their own when they call in.
// Thread-safe.
template <typename Reactor, typename Message>
class WriteQueue {
 public:
  enum class Result { kQueued, kFull, kClosed };
  // Merges messages from the front of `queue` (at least two wait) into
  // `*merged`, removing the ones it takes; returns false to write the front
  // message alone. Runs under the queue's lock: must not block or call back.
  using Coalesce = std::function<bool(std::deque<Message>& queue, Message* merged)>;

  explicit WriteQueue(size_t max_queued) : max_queued_(max_queued) {}

  void SetCoalesce(Coalesce coalesce) {
    absl::MutexLock lock(&mu_);
    coalesce_ = std::move(coalesce);
  }

  // Holds writes back until the matching Release (holds nest): messages
  // written meanwhile wait, and may then be coalesced.
  void Hold() {
    absl::MutexLock lock(&mu_);
    ++held_;
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    --held_;
    WriteNextLocked();
  }

  // Binds the reactor; writing starts now if messages are waiting.
  void Attach(Reactor* reactor) {
    absl::MutexLock lock(&mu_);
    reactor_ = reactor;
    WriteNextLocked();
  }

  // Queues `message`. kFull: max_queued are already waiting (nothing queued);
  // kClosed: the call is finishing.
  Result Write(Message message) { return Offer(&message); }

  // Like Write, but takes `*message` only if it is queued: on kFull or
  // kClosed the caller still has it.
  Result Offer(Message* message) {
    absl::MutexLock lock(&mu_);
    if (finish_requested_) {
      return Result::kClosed;
    }
    if (queue_.size() >= max_queued_) {
      return Result::kFull;
    }
    queue_.push_back(std::move(*message));
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

  // The reactor's OnWriteDone. A failed write means the peer is gone: the call
  // finishes with `status_if_failed`; what is queued stays for Detach.
  void OnWriteDone(bool ok, const grpc::Status& status_if_failed) {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      failed_ = true;
      if (!finish_requested_) {
        finish_requested_ = true;
        finish_status_ = status_if_failed;
      }
    }
    WriteNextLocked();
  }

  // A client reactor's stream is over (its read failed) but its OnDone has not
  // run: gRPC may free the call as soon as nothing holds it, so nothing
  // touches the reactor after this returns (a StartWrite in progress is
  // waited for). Writes are refused as closed; what is queued stays for
  // Detach. A client reactor that writes from outside its reactions holds
  // the call (AddHold) until it has stopped its queue.
  void Stop() {
    absl::MutexLock lock(&mu_);
    reactor_ = nullptr;
    finish_requested_ = true;
  }

  // The reactor's OnDone: nothing touches the reactor after this returns.
  // Returns the messages that were never handed to gRPC (not the one being
  // written, which may or may not have reached the peer).
  std::deque<Message> Detach() {
    absl::MutexLock lock(&mu_);
    reactor_ = nullptr;
    finish_requested_ = true;
    std::deque<Message> unsent;
    unsent.swap(queue_);
    return unsent;
  }

  // Sends the call's initial metadata now, unless a write or the Finish has
  // taken it already or the call is over: tells a client that the call is set
  // up before any message comes (server reactors only). `add` runs first,
  // under the queue's lock, while the call is alive: it may add to the
  // metadata (ServerContext::AddInitialMetadata). Returns whether it sent.
  template <typename Add>
  bool SendInitialMetadata(Add add) {
    absl::MutexLock lock(&mu_);
    if (reactor_ == nullptr || started_ || finish_requested_) return false;
    started_ = true;
    add();
    reactor_->StartSendInitialMetadata();
    return true;
  }

  bool finishing() const {
    absl::MutexLock lock(&mu_);
    return finish_requested_;
  }
  // The code the call finishes with (UNKNOWN before any Finish).
  grpc::StatusCode finish_code() const {
    absl::MutexLock lock(&mu_);
    return finish_requested_ ? finish_status_.error_code() : grpc::StatusCode::UNKNOWN;
  }
  // Whether a write failed (the peer is gone).
  bool failed() const {
    absl::MutexLock lock(&mu_);
    return failed_;
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
    if (writing_ || finished_ || reactor_ == nullptr || held_ > 0) {
      return;
    }
    if (queue_.empty() || failed_) {
      if (finish_requested_) {
        finished_ = true;
        started_ = true;
        reactor_->Finish(finish_status_);
      }
      return;
    }
    if (queue_.size() < 2 || !coalesce_ || !coalesce_(queue_, &current_)) {
      current_ = std::move(queue_.front());
      queue_.pop_front();
    }
    writing_ = true;
    started_ = true;
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
  // The initial metadata has gone (with a write, the Finish, or on its own).
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  int held_ ABSL_GUARDED_BY(mu_) = 0;
  // A write failed: nothing more is written, the call just finishes.
  bool failed_ ABSL_GUARDED_BY(mu_) = false;
  Coalesce coalesce_ ABSL_GUARDED_BY(mu_);
  grpc::Status finish_status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace a2amesh::rpc

#endif  // A2AMESH_RPC_WRITE_QUEUE_H_
