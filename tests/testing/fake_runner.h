#ifndef A2AMESH_TESTS_TESTING_FAKE_RUNNER_H_
#define A2AMESH_TESTS_TESTING_FAKE_RUNNER_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "tasks/task_manager.h"

namespace a2amesh::testing {

// An agent as the task manager sees it: what it was assigned and told to
// cancel, and how many slots its runners hold. Thread-safe.
class FakeAgent {
 public:
  explicit FakeAgent(std::string id) : id_(std::move(id)) {}
  const std::string& id() const { return id_; }

  std::vector<v1::TaskAssignment> assignments() const {
    absl::MutexLock lock(&mu_);
    return assignments_;
  }
  std::vector<std::string> cancels() const {
    absl::MutexLock lock(&mu_);
    return cancels_;
  }
  int slots() const {
    absl::MutexLock lock(&mu_);
    return slots_;
  }

 private:
  friend class FakeRunner;
  const std::string id_;
  mutable absl::Mutex mu_;
  std::vector<v1::TaskAssignment> assignments_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> cancels_ ABSL_GUARDED_BY(mu_);
  int slots_ ABSL_GUARDED_BY(mu_) = 0;
};

class FakeRunner final : public tasks::TaskRunner {
 public:
  explicit FakeRunner(std::shared_ptr<FakeAgent> agent) : agent_(std::move(agent)) {
    absl::MutexLock lock(&agent_->mu_);
    ++agent_->slots_;
  }
  ~FakeRunner() override {
    absl::MutexLock lock(&agent_->mu_);
    --agent_->slots_;
  }
  const std::string& agent_id() const override { return agent_->id(); }
  void Assign(v1::TaskAssignment assignment) override {
    absl::MutexLock lock(&agent_->mu_);
    agent_->assignments_.push_back(std::move(assignment));
  }
  void Cancel(const std::string& task_id, const std::string& reason) override {
    absl::MutexLock lock(&agent_->mu_);
    agent_->cancels_.push_back(task_id);
  }

 private:
  std::shared_ptr<FakeAgent> agent_;
};

// Agents by id, each connected or not. Thread-safe.
class FakeRunnerFactory final : public tasks::RunnerFactory {
 public:
  std::shared_ptr<FakeAgent> Connect(const std::string& id) {
    absl::MutexLock lock(&mu_);
    auto& agent = agents_[id];
    if (agent == nullptr) {
      agent = std::make_shared<FakeAgent>(id);
    }
    connected_[id] = true;
    return agent;
  }
  void Disconnect(const std::string& id) {
    absl::MutexLock lock(&mu_);
    connected_[id] = false;
  }
  std::unique_ptr<tasks::TaskRunner> RunnerFor(const std::string& id) {
    return std::make_unique<FakeRunner>(Connect(id));
  }
  absl::StatusOr<std::unique_ptr<tasks::TaskRunner>> Rebind(const std::string& id) override {
    absl::MutexLock lock(&mu_);
    if (!connected_[id]) {
      return absl::UnavailableError(absl::StrCat("agent ", id, " is not connected"));
    }
    return std::unique_ptr<tasks::TaskRunner>(std::make_unique<FakeRunner>(agents_[id]));
  }

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<FakeAgent>> agents_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, bool> connected_ ABSL_GUARDED_BY(mu_);
};

// Records what a subscription receives. Thread-safe.
class RecordingSubscriber final : public tasks::TaskSubscriber {
 public:
  void OnEvent(const tasks::TaskEvent& e) override {
    absl::MutexLock lock(&mu_);
    events_.push_back(e.event);
    may_reply_.push_back(e.may_reply);
    // The task as of the last event that came with it (first and final ones).
    if (e.task != nullptr) {
      last_task_ = *e.task;
    }
  }
  void OnError(const absl::Status& status) override {
    absl::MutexLock lock(&mu_);
    error_ = status;
  }
  std::vector<lf::a2a::v1::StreamResponse> events() const {
    absl::MutexLock lock(&mu_);
    return events_;
  }
  // TaskEvent::may_reply of each event.
  std::vector<bool> may_reply() const {
    absl::MutexLock lock(&mu_);
    return may_reply_;
  }
  lf::a2a::v1::Task last_task() const {
    absl::MutexLock lock(&mu_);
    return last_task_;
  }
  absl::Status error() const {
    absl::MutexLock lock(&mu_);
    return error_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<lf::a2a::v1::StreamResponse> events_ ABSL_GUARDED_BY(mu_);
  std::vector<bool> may_reply_ ABSL_GUARDED_BY(mu_);
  lf::a2a::v1::Task last_task_ ABSL_GUARDED_BY(mu_);
  absl::Status error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace a2amesh::testing

#endif  // A2AMESH_TESTS_TESTING_FAKE_RUNNER_H_
