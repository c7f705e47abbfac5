// Linked into the test binaries of the ThreadSanitizer build only
// (-DA2AMESH_TSAN=ON, tools/check-tsan): tells TSan of the synchronization
// inside Debian's uninstrumented Abseil and gRPC that orders our code.
//
// Debian's Abseil is not built with TSan, so TSan does not see absl::Mutex
// lock and unlock (they are atomics and futexes inside the library) and takes
// every access guarded by one for a race. These definitions take the place of
// the library's (an executable's symbols come first in the dynamic linker's
// search, for gRPC's calls too): each calls the library's own function and
// tells TSan what it did, acquire after taking the mutex and release before
// letting it go, the annotations an instrumented Abseil makes itself. A
// Condition is evaluated inside the library with the mutex held (by the
// waiter, or by the thread that unlocks): it is wrapped so that TSan sees that
// evaluation happen under the mutex too. absl::Notification and
// absl::BlockingCounter hand over through atomics inside the library: Notify
// and DecrementCount release, the waits acquire.
//
// gRPC's callback API starts an operation on one thread
// (grpc_call_start_batch, with the operation's tag) and runs its completion
// on a thread that takes the tag from a completion queue
// (grpc_completion_queue_next); the hand-off between the two is lock-free
// inside gRPC's core. Starting an operation releases its tag and taking its
// completion acquires it, so that what the starting thread wrote (the
// operation's buffers, our reactor's state) is seen as written before the
// completion reads it, as it is. A server call's done-callback is scheduled
// by whichever thread drops the call's last reference, sometimes inside
// gRPC's library where TSan does not see the drop: scheduling it acquires
// every drop our binaries' (instrumented) copy of gRPC's header code made.

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>

#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "grpc/grpc.h"
#include "grpcpp/support/server_callback.h"

extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);

namespace {

// The library's definition of the function with this mangled name.
template <typename Fn>
Fn Real(const char* mangled) {
  void* fn = dlsym(RTLD_NEXT, mangled);
  if (fn == nullptr) {
    std::fprintf(stderr, "tsan_sync: %s not found in the libraries\n", mangled);
    std::abort();
  }
  return reinterpret_cast<Fn>(fn);
}

// A Condition that acquires (for TSan) the mutex it is evaluated under first.
struct Guarded {
  const absl::Condition* condition;
  absl::Mutex* mu;
  static bool Eval(void* arg) {
    auto* self = static_cast<Guarded*>(arg);
    __tsan_acquire(self->mu);
    const bool holds = self->condition->Eval();
    __tsan_release(self->mu);
    return holds;
  }
  absl::Condition Wrapped() { return absl::Condition(&Guarded::Eval, static_cast<void*>(this)); }
};

// ServerCallbackCall's reference count, a private member: an explicit
// instantiation may name it (access is not checked there).
using Outstanding = std::atomic_int grpc::internal::ServerCallbackCall::*;
Outstanding OutstandingMember();
template <Outstanding kMember>
struct OutstandingThief {
  friend Outstanding OutstandingMember() { return kMember; }
};
template struct OutstandingThief<&grpc::internal::ServerCallbackCall::callbacks_outstanding_>;

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

#define A2AMESH_REAL(type, mangled) static const auto real = Real<type>(mangled)

void Mutex::Lock() {
  A2AMESH_REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex4LockEv");
  real(this);
  __tsan_acquire(this);
}

void Mutex::Unlock() {
  A2AMESH_REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex6UnlockEv");
  __tsan_release(this);
  real(this);
}

bool Mutex::TryLock() {
  A2AMESH_REAL(bool (*)(Mutex*), "_ZN4absl7debian35Mutex7TryLockEv");
  const bool locked = real(this);
  if (locked) __tsan_acquire(this);
  return locked;
}

void Mutex::ReaderLock() {
  A2AMESH_REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex10ReaderLockEv");
  real(this);
  __tsan_acquire(this);
}

void Mutex::ReaderUnlock() {
  A2AMESH_REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex12ReaderUnlockEv");
  __tsan_release(this);
  real(this);
}

bool Mutex::ReaderTryLock() {
  A2AMESH_REAL(bool (*)(Mutex*), "_ZN4absl7debian35Mutex13ReaderTryLockEv");
  const bool locked = real(this);
  if (locked) __tsan_acquire(this);
  return locked;
}

void Mutex::LockWhen(const Condition& cond) {
  A2AMESH_REAL(void (*)(Mutex*, const Condition&),
               "_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE");
  Guarded guarded{&cond, this};
  real(this, guarded.Wrapped());
  __tsan_acquire(this);
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  A2AMESH_REAL(void (*)(Mutex*, const Condition&),
               "_ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE");
  Guarded guarded{&cond, this};
  real(this, guarded.Wrapped());
  __tsan_acquire(this);
}

bool Mutex::LockWhenWithTimeout(const Condition& cond, absl::Duration timeout) {
  A2AMESH_REAL(bool (*)(Mutex*, const Condition&, absl::Duration),
               "_ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  Guarded guarded{&cond, this};
  const bool met = real(this, guarded.Wrapped(), timeout);
  __tsan_acquire(this);
  return met;
}

bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond, absl::Duration timeout) {
  A2AMESH_REAL(bool (*)(Mutex*, const Condition&, absl::Duration),
               "_ZN4absl7debian35Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  Guarded guarded{&cond, this};
  const bool met = real(this, guarded.Wrapped(), timeout);
  __tsan_acquire(this);
  return met;
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, absl::Time deadline) {
  A2AMESH_REAL(bool (*)(Mutex*, const Condition&, absl::Time),
               "_ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  Guarded guarded{&cond, this};
  const bool met = real(this, guarded.Wrapped(), deadline);
  __tsan_acquire(this);
  return met;
}

bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond, absl::Time deadline) {
  A2AMESH_REAL(bool (*)(Mutex*, const Condition&, absl::Time),
               "_ZN4absl7debian35Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  Guarded guarded{&cond, this};
  const bool met = real(this, guarded.Wrapped(), deadline);
  __tsan_acquire(this);
  return met;
}

// Await gives the mutex up while it waits and takes it again.
void Mutex::Await(const Condition& cond) {
  A2AMESH_REAL(void (*)(Mutex*, const Condition&),
               "_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE");
  Guarded guarded{&cond, this};
  __tsan_release(this);
  real(this, guarded.Wrapped());
  __tsan_acquire(this);
}

bool Mutex::AwaitWithTimeout(const Condition& cond, absl::Duration timeout) {
  A2AMESH_REAL(bool (*)(Mutex*, const Condition&, absl::Duration),
               "_ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  __tsan_release(this);
  Guarded guarded{&cond, this};
  const bool met = real(this, guarded.Wrapped(), timeout);
  __tsan_acquire(this);
  return met;
}

bool Mutex::AwaitWithDeadline(const Condition& cond, absl::Time deadline) {
  A2AMESH_REAL(bool (*)(Mutex*, const Condition&, absl::Time),
               "_ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  __tsan_release(this);
  Guarded guarded{&cond, this};
  const bool met = real(this, guarded.Wrapped(), deadline);
  __tsan_acquire(this);
  return met;
}

void CondVar::Wait(Mutex* mu) {
  A2AMESH_REAL(void (*)(CondVar*, Mutex*), "_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE");
  __tsan_release(mu);
  real(this, mu);
  __tsan_acquire(mu);
}

bool CondVar::WaitWithTimeout(Mutex* mu, absl::Duration timeout) {
  A2AMESH_REAL(bool (*)(CondVar*, Mutex*, absl::Duration),
               "_ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  __tsan_release(mu);
  const bool timed_out = real(this, mu, timeout);
  __tsan_acquire(mu);
  return timed_out;
}

bool CondVar::WaitWithDeadline(Mutex* mu, absl::Time deadline) {
  A2AMESH_REAL(bool (*)(CondVar*, Mutex*, absl::Time),
               "_ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  __tsan_release(mu);
  const bool timed_out = real(this, mu, deadline);
  __tsan_acquire(mu);
  return timed_out;
}

void Notification::Notify() {
  A2AMESH_REAL(void (*)(Notification*), "_ZN4absl7debian312Notification6NotifyEv");
  __tsan_release(this);
  real(this);
}

void Notification::WaitForNotification() const {
  A2AMESH_REAL(void (*)(const Notification*),
               "_ZNK4absl7debian312Notification19WaitForNotificationEv");
  real(this);
  __tsan_acquire(const_cast<Notification*>(this));
}

bool Notification::WaitForNotificationWithTimeout(absl::Duration timeout) const {
  A2AMESH_REAL(bool (*)(const Notification*, absl::Duration),
               "_ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE");
  const bool notified = real(this, timeout);
  __tsan_acquire(const_cast<Notification*>(this));
  return notified;
}

bool Notification::WaitForNotificationWithDeadline(absl::Time deadline) const {
  A2AMESH_REAL(bool (*)(const Notification*, absl::Time),
               "_ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE");
  const bool notified = real(this, deadline);
  __tsan_acquire(const_cast<Notification*>(this));
  return notified;
}

bool BlockingCounter::DecrementCount() {
  A2AMESH_REAL(bool (*)(BlockingCounter*), "_ZN4absl7debian315BlockingCounter14DecrementCountEv");
  __tsan_release(this);
  return real(this);
}

void BlockingCounter::Wait() {
  A2AMESH_REAL(void (*)(BlockingCounter*), "_ZN4absl7debian315BlockingCounter4WaitEv");
  real(this);
  __tsan_acquire(this);
}

#undef A2AMESH_REAL

ABSL_NAMESPACE_END
}  // namespace absl

extern "C" grpc_call_error grpc_call_start_batch(grpc_call* call, const grpc_op* ops, size_t nops,
                                                 void* tag, void* reserved) {
  static const auto real =
      Real<grpc_call_error (*)(grpc_call*, const grpc_op*, size_t, void*, void*)>(
          "grpc_call_start_batch");
  __tsan_release(tag);
  return real(call, ops, nops, tag, reserved);
}

extern "C" grpc_call_error grpc_server_request_call(grpc_server* server, grpc_call** call,
                                                    grpc_call_details* details,
                                                    grpc_metadata_array* request_metadata,
                                                    grpc_completion_queue* cq_bound_to_call,
                                                    grpc_completion_queue* cq_for_notification,
                                                    void* tag) {
  static const auto real =
      Real<grpc_call_error (*)(grpc_server*, grpc_call**, grpc_call_details*, grpc_metadata_array*,
                               grpc_completion_queue*, grpc_completion_queue*, void*)>(
          "grpc_server_request_call");
  __tsan_release(tag);
  return real(server, call, details, request_metadata, cq_bound_to_call, cq_for_notification, tag);
}

extern "C" grpc_call_error grpc_server_request_registered_call(
    grpc_server* server, void* registered_method, grpc_call** call, gpr_timespec* deadline,
    grpc_metadata_array* request_metadata, grpc_byte_buffer** optional_payload,
    grpc_completion_queue* cq_bound_to_call, grpc_completion_queue* cq_for_notification,
    void* tag) {
  static const auto real = Real<grpc_call_error (*)(
      grpc_server*, void*, grpc_call**, gpr_timespec*, grpc_metadata_array*, grpc_byte_buffer**,
      grpc_completion_queue*, grpc_completion_queue*, void*)>(
      "grpc_server_request_registered_call");
  __tsan_release(tag);
  return real(server, registered_method, call, deadline, request_metadata, optional_payload,
              cq_bound_to_call, cq_for_notification, tag);
}

extern "C" grpc_event grpc_completion_queue_next(grpc_completion_queue* cq, gpr_timespec deadline,
                                                 void* reserved) {
  static const auto real = Real<grpc_event (*)(grpc_completion_queue*, gpr_timespec, void*)>(
      "grpc_completion_queue_next");
  const grpc_event event = real(cq, deadline, reserved);
  if (event.type == GRPC_OP_COMPLETE) __tsan_acquire(event.tag);
  return event;
}

void grpc::internal::ServerCallbackCall::ScheduleOnDone(bool inline_ondone) {
  static const auto real = Real<void (*)(ServerCallbackCall*, bool)>(
      "_ZN4grpc8internal18ServerCallbackCall14ScheduleOnDoneEb");
  __tsan_acquire(&(this->*OutstandingMember()));
  real(this, inline_ondone);
}
