#include "rpc/call_metrics.h"

#include <algorithm>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "lf/a2a/v1/a2a.grpc.pb.h"
#include "rpc/unary.h"
#include "testing/wait.h"

namespace a2amesh::rpc {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr char kService[] = "lf.a2a.v1.A2AService";

// What CallContexts reported.
class Reports {
 public:
  void Add(absl::string_view service, absl::string_view method, grpc::StatusCode code,
           absl::Duration duration) {
    absl::MutexLock lock(&mu_);
    lines_.push_back(absl::StrCat(service, "/", method, " ", code));
    if (duration < absl::ZeroDuration()) lines_.push_back("negative duration");
  }
  std::vector<std::string> lines() const {
    absl::MutexLock lock(&mu_);
    return lines_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
};

// A service whose calls end in the ways the node's do: finished at once,
// finished later on another thread, a stream refused, a call nobody names.
class Service final : public lf::a2a::v1::A2AService::CallbackService {
 public:
  grpc::ServerUnaryReactor* GetTask(grpc::CallbackServerContext* context,
                                    const lf::a2a::v1::GetTaskRequest* request,
                                    lf::a2a::v1::Task*) override {
    Meter(context, kService, "GetTask");
    return FinishNow(context, absl::NotFoundError(request->id()));
  }
  grpc::ServerUnaryReactor* CancelTask(grpc::CallbackServerContext* context,
                                       const lf::a2a::v1::CancelTaskRequest*,
                                       lf::a2a::v1::Task* response) override {
    Meter(context, kService, "CancelTask");
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    threads_.emplace_back([reactor, context, response] {
      response->set_id("done");
      Finish(reactor, context, grpc::Status::OK);
    });
    return reactor;
  }
  grpc::ServerWriteReactor<lf::a2a::v1::StreamResponse>* SubscribeToTask(
      grpc::CallbackServerContext* context, const lf::a2a::v1::SubscribeToTaskRequest*) override {
    Meter(context, kService, "SubscribeToTask");
    return RefuseWrites<lf::a2a::v1::StreamResponse>(
        context, grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "no"));
  }
  grpc::ServerUnaryReactor* ListTasks(grpc::CallbackServerContext* context,
                                      const lf::a2a::v1::ListTasksRequest*,
                                      lf::a2a::v1::ListTasksResponse*) override {
    return FinishNow(context, absl::OkStatus());  // not metered
  }
  ~Service() override {
    for (std::thread& thread : threads_) thread.join();
  }

 private:
  std::vector<std::thread> threads_;
};

class CallMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);
    builder.SetContextAllocator(std::make_unique<CallContexts>(
        [this](absl::string_view service, absl::string_view method, grpc::StatusCode code,
               absl::Duration duration,
               absl::string_view trace_id) { reports_.Add(service, method, code, duration); }));
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = lf::a2a::v1::A2AService::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  Service service_;
  Reports reports_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<lf::a2a::v1::A2AService::Stub> stub_;
};

TEST_F(CallMetricsTest, NamedCallsAreReportedWithTheCodeTheyEndedWith) {
  grpc::ClientContext get;
  lf::a2a::v1::GetTaskRequest get_request;
  get_request.set_id("t1");
  lf::a2a::v1::Task task;
  EXPECT_EQ(stub_->GetTask(&get, get_request, &task).error_code(), grpc::StatusCode::NOT_FOUND);

  grpc::ClientContext cancel;
  EXPECT_TRUE(stub_->CancelTask(&cancel, lf::a2a::v1::CancelTaskRequest(), &task).ok());
  EXPECT_EQ(task.id(), "done");

  grpc::ClientContext subscribe;
  auto reader = stub_->SubscribeToTask(&subscribe, lf::a2a::v1::SubscribeToTaskRequest());
  lf::a2a::v1::StreamResponse event;
  EXPECT_FALSE(reader->Read(&event));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);

  // Reported as gRPC releases each call, after the client has its answer.
  ASSERT_TRUE(testing::WaitFor([&] { return reports_.lines().size() >= 3; }));
  std::vector<std::string> lines = reports_.lines();
  std::sort(lines.begin(), lines.end());
  EXPECT_THAT(lines, ElementsAre(absl::StrCat(kService, "/CancelTask 0"),
                                 absl::StrCat(kService, "/GetTask 5"),
                                 absl::StrCat(kService, "/SubscribeToTask 7")));
}

TEST_F(CallMetricsTest, UnnamedAndInProcessCallsAreNotReported) {
  grpc::ClientContext list;
  lf::a2a::v1::ListTasksResponse tasks;
  EXPECT_TRUE(stub_->ListTasks(&list, lf::a2a::v1::ListTasksRequest(), &tasks).ok());

  // The HTTP bindings' way in: counted as HTTP requests, not here.
  auto in_process =
      lf::a2a::v1::A2AService::NewStub(server_->InProcessChannel(grpc::ChannelArguments()));
  grpc::ClientContext get;
  lf::a2a::v1::Task task;
  EXPECT_EQ(in_process->GetTask(&get, lf::a2a::v1::GetTaskRequest(), &task).error_code(),
            grpc::StatusCode::NOT_FOUND);

  // A named call after them: once it is reported, they would have been.
  grpc::ClientContext named;
  EXPECT_EQ(stub_->GetTask(&named, lf::a2a::v1::GetTaskRequest(), &task).error_code(),
            grpc::StatusCode::NOT_FOUND);
  ASSERT_TRUE(testing::WaitFor([&] { return !reports_.lines().empty(); }));
  server_->Shutdown();  // every release has run
  EXPECT_THAT(reports_.lines(), ElementsAre(absl::StrCat(kService, "/GetTask 5")));
}

TEST_F(CallMetricsTest, AServerWithoutCallContextsIgnoresTheCalls) {
  Service plain_service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&plain_service);
  std::unique_ptr<grpc::Server> plain = builder.BuildAndStart();
  ASSERT_NE(plain, nullptr);
  auto stub = lf::a2a::v1::A2AService::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  grpc::ClientContext get;
  lf::a2a::v1::Task task;
  EXPECT_EQ(stub->GetTask(&get, lf::a2a::v1::GetTaskRequest(), &task).error_code(),
            grpc::StatusCode::NOT_FOUND);
  plain->Shutdown();
  EXPECT_THAT(reports_.lines(), IsEmpty());
}

}  // namespace
}  // namespace a2amesh::rpc
