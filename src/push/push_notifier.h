#ifndef A2AMESH_PUSH_PUSH_NOTIFIER_H_
#define A2AMESH_PUSH_PUSH_NOTIFIER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "a2amesh/task_store.h"
#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/telemetry.h"
#include "http/http_client.h"
#include "lf/a2a/v1/a2a.pb.h"
#include "tasks/task_manager.h"
#include "trace/tracer.h"

namespace a2amesh::push {

struct PushOptions {
  // Deliver to loopback, private and link-local addresses too (tests, or a
  // mesh whose webhooks are inside the cluster).
  bool allow_private_targets = false;
  // Events waiting for delivery, over all webhooks; past it new ones are
  // dropped (and counted).
  int64_t max_queued = 10000;
  // Tries of one event before it is given up.
  int max_attempts = 8;
  // Retries wait initial_backoff, doubling up to max_backoff (±20% jitter).
  absl::Duration initial_backoff = absl::Milliseconds(200);
  absl::Duration max_backoff = absl::Seconds(30);
  absl::Duration request_timeout = absl::Seconds(10);
  int max_configs_per_task = 16;
  Telemetry* telemetry = &NoTelemetry();
  // Records a CLIENT span for each POST, child of the task's trace; its
  // context goes to the webhook as traceparent. Must outlive the notifier.
  trace::Tracer* tracer = trace::Tracer::Disabled();
};

// A2A push notifications: the four config RPCs and the delivery of task
// events to webhooks.
//
// Configs are stored with their task (durably, in the same commit when they
// come with the SendMessage that creates it) and watched again after a
// restart. Each config watches its task until it is terminal: its first event
// is the Task as it stands, then every event in order, through interrupted
// states. Each is POSTed as StreamResponse JSON (Content-Type
// application/a2a+json) with `Authorization: <scheme> <credentials>` from the
// config's authentication, `X-A2A-Notification-Token` from its token, and
// the task's trace context (`traceparent`, `tracestate`: the POST's own span
// when tracing is on).
// Delivery is at least once and in order per webhook: an event is retried
// with exponential backoff until a 2xx or max_attempts, and the next waits
// for it. Targets that resolve to loopback, private or link-local addresses
// are refused unless allowed. The queue is in memory, bounded by max_queued;
// what it held when the node stopped is not lost: a config is marked settled
// in the store once the last event of its watch is delivered (or given up),
// and after a restart every unsettled config is watched again -- its first
// event the Task as it then stands, or, if the task ended meanwhile, the Task
// in its final form, which carries what every missed event did. So delivery
// stays at least once and in order across restarts (with a duplicate of
// what was delivered just before the stop).
//
// Thread-safe.
class PushNotifier final : public tasks::PushHook {
 public:
  PushNotifier(PushOptions options, TaskStore& store);
  ~PushNotifier() override;
  PushNotifier(const PushNotifier&) = delete;
  PushNotifier& operator=(const PushNotifier&) = delete;

  // Set once, before anything else is called (the task manager is built with
  // this notifier as its PushHook).
  void SetTaskManager(tasks::TaskManager* tasks) { tasks_ = tasks; }
  // Watches again the tasks of every config not settled: unfinished tasks,
  // and ended tasks whose end was not delivered (they are sent as they
  // ended). After the task manager has recovered. May block.
  absl::Status Recover();
  // Stops delivering: unsubscribes every watch and drops what is queued (the
  // next start sends it again).
  // Idempotent; before the task manager goes away.
  void Shutdown();

  // The A2A RPCs, for tasks this node owns. May block.
  absl::StatusOr<lf::a2a::v1::TaskPushNotificationConfig> Create(
      lf::a2a::v1::TaskPushNotificationConfig config);
  absl::StatusOr<lf::a2a::v1::TaskPushNotificationConfig> Get(const std::string& task_id,
                                                              const std::string& id);
  absl::StatusOr<lf::a2a::v1::ListTaskPushNotificationConfigsResponse> List(
      const lf::a2a::v1::ListTaskPushNotificationConfigsRequest& request);
  absl::Status Delete(const std::string& task_id, const std::string& id);

  // Events waiting for delivery.
  int64_t queued() const;

  // tasks::PushHook
  absl::StatusOr<lf::a2a::v1::TaskPushNotificationConfig> Prepare(
      const std::string& task_id, lf::a2a::v1::TaskPushNotificationConfig config) override;
  std::shared_ptr<tasks::TaskSubscriber> Attach(
      const lf::a2a::v1::TaskPushNotificationConfig& config,
      const trace::SpanContext& trace) override;

 private:
  class Target;
  using Key = std::pair<std::string, std::string>;  // task id, config id

  // A config checked and completed (id) for task `task_id`.
  absl::StatusOr<lf::a2a::v1::TaskPushNotificationConfig> Check(
      const std::string& task_id, lf::a2a::v1::TaskPushNotificationConfig config) const;
  // The config's task, which must be one of this node's (TaskNotFound if not).
  absl::StatusOr<tasks::TaskRecord> OwnTask(const std::string& task_id) const;
  absl::Status CommitAndWait(TaskStoreOp op);
  // Records that `config` has nothing more to deliver (kSettlePushConfig).
  void Settle(const lf::a2a::v1::TaskPushNotificationConfig& config);
  // Registers a watcher for `config`, replacing one with the same key; its
  // POSTs belong to the task's `trace`.
  std::shared_ptr<Target> Register(const lf::a2a::v1::TaskPushNotificationConfig& config,
                                   trace::SpanContext trace);
  void Unregister(const Key& key);

  // From a Target (with the task's lock held): queue `event`.
  void Enqueue(const std::shared_ptr<Target>& target, const lf::a2a::v1::StreamResponse& event,
               bool last);
  void SendLocked(const std::shared_ptr<Target>& target) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnSent(const std::shared_ptr<Target>& target, absl::StatusOr<int> result, absl::Time started,
              trace::Span span);
  absl::Duration Backoff(int attempts);

  const PushOptions options_;
  TaskStore& store_;
  tasks::TaskManager* tasks_ = nullptr;
  std::unique_ptr<http::Client> client_;

  mutable absl::Mutex mu_;
  std::map<Key, std::shared_ptr<Target>> targets_ ABSL_GUARDED_BY(mu_);
  int64_t queued_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace a2amesh::push

#endif  // A2AMESH_PUSH_PUSH_NOTIFIER_H_
