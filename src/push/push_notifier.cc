#include "push/push_notifier.h"

#include <algorithm>
#include <deque>
#include <random>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "core/a2a_error.h"
#include "core/ids.h"
#include "core/log.h"
#include "google/protobuf/util/json_util.h"
#include "routing/request_validation.h"
#include "tasks/task_state.h"

namespace a2amesh::push {

using lf::a2a::v1::StreamResponse;
using lf::a2a::v1::TaskPushNotificationConfig;

namespace {

// Header values must not carry line breaks (they would add headers).
bool SafeHeaderValue(absl::string_view value) {
  return !absl::StrContains(value, '\r') && !absl::StrContains(value, '\n');
}

// A POST's CLIENT span (OpenTelemetry's HTTP client conventions), child of
// the task's trace `parent`: recorded if that is sampled and tracing is on;
// else it only carries `parent` on.
trace::Span StartPostSpan(trace::Tracer& tracer, const trace::SpanContext& parent,
                          const TaskPushNotificationConfig& config) {
  trace::Span span = tracer.StartSpan("POST", trace::SpanKind::kClient,
                                      parent.valid() ? &parent : nullptr, /*remote=*/false);
  if (!span.recording()) return span;
  span.SetAttribute("http.request.method", "POST");
  // Without its query, which may hold a secret.
  span.SetAttribute("url.full", absl::string_view(config.url()).substr(0, config.url().find('?')));
  if (absl::StatusOr<http::Url> url = http::ParseUrl(config.url()); url.ok()) {
    span.SetAttribute("server.address", url->host);
    int64_t port = 0;
    if (absl::SimpleAtoi(url->port, &port)) span.SetAttribute("server.port", port);
  }
  span.SetAttribute("a2a.task_id", config.task_id());
  span.SetAttribute("a2amesh.push_config_id", config.id());
  return span;
}

void EndPostSpan(trace::Span& span, const absl::StatusOr<int>& result) {
  if (!span.recording()) return;
  if (!result.ok()) {
    span.SetAttribute("error.type", absl::StatusCodeToString(result.status().code()));
    span.SetError(result.status().message());
  } else {
    span.SetAttribute("http.response.status_code", static_cast<int64_t>(*result));
    // Client spans: any status from 400 up is an error.
    if (*result >= 400) span.SetError(absl::StrCat("HTTP ", *result));
  }
  span.End();
}

}  // namespace

// One config's watch of its task and its queue of events to POST. The queue
// and flags are guarded by the notifier's mutex.
class PushNotifier::Target final : public tasks::TaskSubscriber,
                                   public std::enable_shared_from_this<Target> {
 public:
  Target(PushNotifier& notifier, TaskPushNotificationConfig config, trace::SpanContext trace)
      : notifier_(notifier), config(std::move(config)), trace(std::move(trace)) {}

  void OnEvent(const tasks::TaskEvent& e) override {
    // The watch ends with the task's terminal event.
    const bool last =
        IsTerminalState(e.state) && (tasks::IsFinalEvent(e.event) || e.event.has_task());
    notifier_.Enqueue(shared_from_this(), e.event, last);
  }
  void OnError(const absl::Status& status) override {
    A2AMESH_LOG(Warning, "push watch ended early")
        .With("task", config.task_id())
        .With("config", config.id())
        .With("error", status);
  }

  Key key() const { return {config.task_id(), config.id()}; }

  PushNotifier& notifier_;
  const TaskPushNotificationConfig config;
  const trace::SpanContext trace;  // the task's: its POSTs' spans are children
  std::deque<std::string> queue;   // StreamResponse JSON
  bool sending = false;            // a POST (or its retry timer) is under way
  int attempts = 0;                // failed tries of queue.front()
  bool watch_ended = false;        // no more events will come
  bool removed = false;            // deleted, replaced or stopped
  bool refused = false;            // its address is not allowed
};

PushNotifier::PushNotifier(PushOptions options, TaskStore& store)
    : options_(std::move(options)), store_(store) {
  http::ClientOptions client;
  client.timeout = options_.request_timeout;
  client.allow_private = options_.allow_private_targets;
  client_ = std::make_unique<http::Client>(client);
}

PushNotifier::~PushNotifier() { Shutdown(); }

void PushNotifier::Shutdown() {
  std::map<Key, std::shared_ptr<Target>> targets;
  int64_t dropped;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
    targets.swap(targets_);
    dropped = queued_;
    queued_ = 0;
    for (auto& [key, target] : targets) target->removed = true;
  }
  for (auto& [key, target] : targets) {
    if (tasks_ != nullptr) tasks_->Unsubscribe(key.first, target.get());
  }
  client_.reset();  // waits for its thread; pending POSTs end as CANCELLED
  if (dropped > 0) {
    A2AMESH_LOG(Info,
                "push notifications not delivered yet: the node stops; its tasks are "
                "sent again when it starts")
        .With("queued", dropped);
  }
}

int64_t PushNotifier::queued() const {
  absl::MutexLock lock(&mu_);
  return queued_;
}

absl::StatusOr<TaskPushNotificationConfig> PushNotifier::Check(
    const std::string& task_id, TaskPushNotificationConfig config) const {
  config.set_task_id(task_id);
  if (config.url().empty()) {
    return InvalidFieldError("url", "is required: the webhook that task events are POSTed to");
  }
  absl::StatusOr<http::Url> url = http::ParseUrl(config.url());
  if (!url.ok()) {
    return InvalidFieldError("url", url.status().message());
  }
  if (!options_.allow_private_targets &&
      (absl::EqualsIgnoreCase(url->host, "localhost") ||
       // An address literal can be checked before any DNS.
       (http::IsIpAddress(url->host) && !http::IsPublicAddress(url->host)))) {
    return InvalidFieldError(
        "url", absl::StrCat(url->host,
                            " is a loopback, private or link-local address; push targets must be "
                            "public (or the node started with --push-allow-private-targets)"));
  }
  if (config.id().empty()) {
    config.set_id(NewUuid());
  } else if (config.id().size() > 128 || absl::StrContains(config.id(), '/') ||
             !SafeHeaderValue(config.id())) {
    return InvalidFieldError("id", "must be at most 128 characters, without '/' or line breaks");
  }
  if (config.has_authentication()) {
    const auto& auth = config.authentication();
    if (auth.scheme().empty() ||
        std::any_of(auth.scheme().begin(), auth.scheme().end(),
                    [](char c) { return !absl::ascii_isalnum(c) && c != '-' && c != '_'; })) {
      return InvalidFieldError("authentication.scheme",
                               "must be an HTTP authentication scheme such as Bearer or Basic");
    }
    if (!SafeHeaderValue(auth.credentials())) {
      return InvalidFieldError("authentication.credentials", "must not contain line breaks");
    }
  }
  if (!SafeHeaderValue(config.token())) {
    return InvalidFieldError("token", "must not contain line breaks");
  }
  return config;
}

absl::StatusOr<tasks::TaskRecord> PushNotifier::OwnTask(const std::string& task_id) const {
  if (absl::Status valid = routing::ValidateTaskId(task_id, "task_id"); !valid.ok()) {
    return valid;
  }
  return tasks_->GetRecord(task_id);
}

absl::Status PushNotifier::CommitAndWait(TaskStoreOp op) {
  absl::Notification done;
  absl::Status result;
  std::vector<TaskStoreOp> ops;
  ops.push_back(std::move(op));
  store_.Commit(std::move(ops), [&](absl::Status status) {
    result = std::move(status);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

std::shared_ptr<PushNotifier::Target> PushNotifier::Register(
    const TaskPushNotificationConfig& config, trace::SpanContext trace) {
  auto target = std::make_shared<Target>(*this, config, std::move(trace));
  std::shared_ptr<Target> old;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) {
      target->removed = true;
      return target;
    }
    auto [it, added] = targets_.try_emplace(target->key(), target);
    if (!added) {
      old = std::move(it->second);
      old->removed = true;
      queued_ -= static_cast<int64_t>(old->queue.size());
      it->second = target;
    }
  }
  if (old != nullptr) {
    tasks_->Unsubscribe(config.task_id(), old.get());
  }
  return target;
}

void PushNotifier::Unregister(const Key& key) {
  std::shared_ptr<Target> target;
  {
    absl::MutexLock lock(&mu_);
    auto it = targets_.find(key);
    if (it == targets_.end()) return;
    target = std::move(it->second);
    targets_.erase(it);
    target->removed = true;
    queued_ -= static_cast<int64_t>(target->queue.size());
  }
  tasks_->Unsubscribe(key.first, target.get());
}

absl::StatusOr<TaskPushNotificationConfig> PushNotifier::Prepare(
    const std::string& task_id, TaskPushNotificationConfig config) {
  return Check(task_id, std::move(config));
}

std::shared_ptr<tasks::TaskSubscriber> PushNotifier::Attach(
    const TaskPushNotificationConfig& config, const trace::SpanContext& trace) {
  return Register(config, trace);
}

absl::Status PushNotifier::Recover() {
  absl::StatusOr<std::vector<TaskPushNotificationConfig>> configs = store_.ListPushConfigs("");
  if (!configs.ok()) return configs.status();
  int ended = 0;
  for (const TaskPushNotificationConfig& config : *configs) {
    absl::StatusOr<v1::TaskInfo> info = tasks_->ActiveInfo(config.task_id());
    std::shared_ptr<Target> target =
        Register(config, info.ok() ? tasks::TaskTrace(*info) : trace::SpanContext());
    if (tasks_->Watch(config.task_id(), target).ok()) {
      continue;  // its first event is the task as it stands
    }
    // The task ended before the node stopped, and the webhook may not have
    // heard the end: it gets the task in its final form, which carries what
    // every event it missed did.
    absl::StatusOr<lf::a2a::v1::Task> task = tasks_->Get(config.task_id());
    if (task.ok() && IsTerminalState(task->status().state())) {
      StreamResponse event;
      *event.mutable_task() = *std::move(task);
      Enqueue(target, event, /*last=*/true);
      ++ended;
    } else {
      Unregister(target->key());  // gone (retention removed it)
    }
  }
  if (!configs->empty()) {
    A2AMESH_LOG(Info, "push notifications resumed")
        .With("configs", configs->size())
        .With("ended_tasks", ended);
  }
  return absl::OkStatus();
}

absl::StatusOr<TaskPushNotificationConfig> PushNotifier::Create(TaskPushNotificationConfig config) {
  const std::string task_id = config.task_id();
  absl::StatusOr<tasks::TaskRecord> task = OwnTask(task_id);
  if (!task.ok()) return task.status();
  absl::StatusOr<TaskPushNotificationConfig> checked = Check(task_id, std::move(config));
  if (!checked.ok()) return checked.status();
  // A task that has ended takes a config too (A2A v1.0.1 §3.1.7 lists only
  // PushNotificationNotSupported and TaskNotFound): it is kept, and there is
  // nothing more to push.
  absl::StatusOr<std::vector<TaskPushNotificationConfig>> existing =
      store_.ListPushConfigs(task_id);
  if (!existing.ok()) return existing.status();
  const bool replaces =
      std::any_of(existing->begin(), existing->end(),
                  [&](const TaskPushNotificationConfig& c) { return c.id() == checked->id(); });
  if (!replaces && static_cast<int>(existing->size()) >= options_.max_configs_per_task) {
    return absl::ResourceExhaustedError(
        absl::StrCat("task ", task_id, " already has ", existing->size(),
                     " push notification configs, the most a task may have"));
  }
  TaskStoreOp op;
  op.kind = TaskStoreOp::Kind::kPutPushConfig;
  op.task_id = task_id;
  op.config_id = checked->id();
  op.payload = checked->SerializeAsString();
  if (absl::Status stored = CommitAndWait(std::move(op)); !stored.ok()) return stored;
  std::shared_ptr<Target> target = Register(*checked, tasks::TaskTrace(task->info));
  if (!tasks_->Watch(task_id, target).ok()) {
    // It has ended (or ended meanwhile): nothing more to send, after a
    // restart either.
    Unregister(target->key());
    Settle(*checked);
  }
  return *checked;
}

absl::StatusOr<TaskPushNotificationConfig> PushNotifier::Get(const std::string& task_id,
                                                             const std::string& id) {
  if (absl::StatusOr<tasks::TaskRecord> task = OwnTask(task_id); !task.ok()) {
    return task.status();
  }
  absl::StatusOr<std::vector<TaskPushNotificationConfig>> configs = store_.ListPushConfigs(task_id);
  if (!configs.ok()) return configs.status();
  for (TaskPushNotificationConfig& config : *configs) {
    if (config.id() == id) return std::move(config);
  }
  return absl::NotFoundError(
      absl::StrCat("task ", task_id, " has no push notification config '", id, "'"));
}

absl::StatusOr<lf::a2a::v1::ListTaskPushNotificationConfigsResponse> PushNotifier::List(
    const lf::a2a::v1::ListTaskPushNotificationConfigsRequest& request) {
  if (absl::StatusOr<tasks::TaskRecord> task = OwnTask(request.task_id()); !task.ok()) {
    return task.status();
  }
  const int page_size = request.page_size() == 0 ? 50 : request.page_size();
  if (page_size < 1 || page_size > 100) {
    return InvalidFieldError("page_size", "must be between 1 and 100");
  }
  absl::StatusOr<std::vector<TaskPushNotificationConfig>> configs =
      store_.ListPushConfigs(request.task_id());
  if (!configs.ok()) return configs.status();
  lf::a2a::v1::ListTaskPushNotificationConfigsResponse response;
  for (TaskPushNotificationConfig& config : *configs) {  // by id
    if (!request.page_token().empty() && config.id() <= request.page_token()) continue;
    if (response.configs_size() == page_size) {
      response.set_next_page_token(response.configs(page_size - 1).id());
      break;
    }
    *response.add_configs() = std::move(config);
  }
  return response;
}

absl::Status PushNotifier::Delete(const std::string& task_id, const std::string& id) {
  absl::StatusOr<TaskPushNotificationConfig> config = Get(task_id, id);
  if (!config.ok()) return config.status();
  TaskStoreOp op;
  op.kind = TaskStoreOp::Kind::kDeletePushConfig;
  op.task_id = task_id;
  op.config_id = id;
  if (absl::Status stored = CommitAndWait(std::move(op)); !stored.ok()) return stored;
  Unregister({task_id, id});
  return absl::OkStatus();
}

void PushNotifier::Enqueue(const std::shared_ptr<Target>& target, const StreamResponse& event,
                           bool last) {
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(event, &json).ok()) {
    return;
  }
  absl::MutexLock lock(&mu_);
  if (last) target->watch_ended = true;
  if (target->removed || stopped_) return;
  if (target->refused) {
    options_.telemetry->PushAttempt("refused", absl::ZeroDuration(), "");
  } else if (queued_ >= options_.max_queued) {
    options_.telemetry->PushAttempt("dropped", absl::ZeroDuration(), "");
    A2AMESH_LOG(Warning, "push notification dropped: the delivery queue is full")
        .With("task", target->config.task_id())
        .With("queued", queued_);
  } else {
    target->queue.push_back(std::move(json));
    ++queued_;
  }
  // Sends what is queued; forgets the target once its watch has ended and
  // nothing is left to send.
  SendLocked(target);
}

void PushNotifier::SendLocked(const std::shared_ptr<Target>& target) {
  if (target->sending || target->removed || stopped_) return;
  if (target->queue.empty()) {
    if (target->watch_ended) {
      auto it = targets_.find(target->key());
      if (it != targets_.end() && it->second == target) {
        targets_.erase(it);
        // Its last event is delivered (or given up): a restart need not send
        // the task again. Append never blocks nor calls back.
        Settle(target->config);
      }
    }
    return;
  }
  target->sending = true;
  const TaskPushNotificationConfig& config = target->config;
  std::vector<std::pair<std::string, std::string>> headers = {
      {"Content-Type", "application/a2a+json"}};
  if (config.has_authentication()) {
    headers.emplace_back("Authorization", absl::StrCat(config.authentication().scheme(), " ",
                                                       config.authentication().credentials()));
  }
  if (!config.token().empty()) {
    headers.emplace_back("X-A2A-Notification-Token", config.token());
  }
  trace::Span span = StartPostSpan(*options_.tracer, target->trace, config);
  if (std::string traceparent = trace::FormatTraceparent(span.context()); !traceparent.empty()) {
    headers.emplace_back("traceparent", std::move(traceparent));
    if (!span.context().trace_state.empty()) {
      headers.emplace_back("tracestate", span.context().trace_state);
    }
  }
  const absl::Time started = absl::Now();
  client_->Post(config.url(), std::move(headers), target->queue.front(),
                [this, target, started, span = std::make_shared<trace::Span>(std::move(span))](
                    absl::StatusOr<int> result) {
                  OnSent(target, std::move(result), started, std::move(*span));
                });
}

void PushNotifier::OnSent(const std::shared_ptr<Target>& target, absl::StatusOr<int> result,
                          absl::Time started, trace::Span span) {
  const bool delivered = result.ok() && *result >= 200 && *result < 300;
  EndPostSpan(span, result);
  const std::string trace_id =
      delivered && span.context().sampled() ? span.context().TraceIdHex() : std::string();
  absl::MutexLock lock(&mu_);
  target->sending = false;
  if (stopped_ || target->removed) return;
  if (delivered) {
    options_.telemetry->PushAttempt("delivered", absl::Now() - started, trace_id);
    target->queue.pop_front();
    --queued_;
    target->attempts = 0;
    return SendLocked(target);
  }
  if (!result.ok() && (result.status().code() == absl::StatusCode::kPermissionDenied ||
                       result.status().code() == absl::StatusCode::kInvalidArgument)) {
    A2AMESH_LOG(Warning, "push target refused; its notifications are dropped")
        .With("task", target->config.task_id())
        .With("config", target->config.id())
        .With("error", result.status());
    for (size_t i = 0; i < target->queue.size(); ++i) {
      options_.telemetry->PushAttempt("refused", absl::ZeroDuration(), "");
    }
    queued_ -= static_cast<int64_t>(target->queue.size());
    target->queue.clear();
    target->refused = true;
    return SendLocked(target);
  }
  const std::string why =
      result.ok() ? absl::StrCat("HTTP ", *result) : std::string(result.status().message());
  if (++target->attempts >= options_.max_attempts) {
    options_.telemetry->PushAttempt("failed", absl::ZeroDuration(), "");
    A2AMESH_LOG(Warning, "push notification given up")
        .With("task", target->config.task_id())
        .With("config", target->config.id())
        .With("attempts", target->attempts)
        .With("last_error", why);
    target->queue.pop_front();
    --queued_;
    target->attempts = 0;
    return SendLocked(target);
  }
  options_.telemetry->PushAttempt("retried", absl::ZeroDuration(), "");
  target->sending = true;  // until the retry
  client_->After(Backoff(target->attempts), [this, target] {
    absl::MutexLock lock(&mu_);
    target->sending = false;
    SendLocked(target);
  });
}

void PushNotifier::Settle(const TaskPushNotificationConfig& config) {
  std::vector<TaskStoreOp> ops(1);
  ops[0].kind = TaskStoreOp::Kind::kSettlePushConfig;
  ops[0].task_id = config.task_id();
  ops[0].config_id = config.id();
  store_.Append(std::move(ops));
}

absl::Duration PushNotifier::Backoff(int attempts) {
  absl::Duration backoff = options_.initial_backoff;
  for (int i = 1; i < attempts && backoff < options_.max_backoff; ++i) backoff *= 2;
  backoff = std::min(backoff, options_.max_backoff);
  thread_local std::mt19937 random(std::random_device{}());
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  return backoff * jitter(random);
}

}  // namespace a2amesh::push
