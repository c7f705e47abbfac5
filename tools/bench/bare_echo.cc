// bare-echo: the limit for the benchmarks. A bare gRPC lf.a2a.v1.A2AService on
// the callback API that answers SendMessage and SendStreamingMessage itself
// with the same payloads an a2a-mesh echo task produces (a Task with the
// user's message, a status message and the text as an artifact; streamed as
// Task, WORKING, artifact, COMPLETED), and the standard health service. No
// routing, no store, no agent: what any A2A server built on gRPC pays at
// least. Built twice, linked like meshd and fully static.
//
//   bare-echo --address 127.0.0.1:0 --ready-file /tmp/ready.json

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "google/protobuf/util/time_util.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "lf/a2a/v1/a2a.grpc.pb.h"

namespace {

using lf::a2a::v1::StreamResponse;
using lf::a2a::v1::Task;

std::atomic<int64_t> next_id{0};

// The completed echo task for `request`.
Task EchoTask(const lf::a2a::v1::SendMessageRequest& request) {
  Task task;
  task.set_id("bare~" + std::to_string(next_id.fetch_add(1)));
  task.set_context_id(request.message().context_id().empty() ? task.id() + "-ctx"
                                                             : request.message().context_id());
  *task.add_history() = request.message();
  task.mutable_history(0)->set_task_id(task.id());
  task.mutable_history(0)->set_context_id(task.context_id());
  auto* status = task.mutable_status();
  status->set_state(lf::a2a::v1::TASK_STATE_COMPLETED);
  *status->mutable_timestamp() = google::protobuf::util::TimeUtil::GetCurrentTime();
  auto* reply = status->mutable_message();
  reply->set_message_id(task.id() + "-reply");
  reply->set_role(lf::a2a::v1::ROLE_AGENT);
  reply->set_task_id(task.id());
  reply->set_context_id(task.context_id());
  reply->add_parts()->set_text("echoed by bare-echo");
  *task.add_history() = *reply;
  auto* artifact = task.add_artifacts();
  artifact->set_artifact_id("echo");
  artifact->set_name("echo");
  for (const auto& part : request.message().parts()) *artifact->add_parts() = part;
  return task;
}

class Service final : public lf::a2a::v1::A2AService::CallbackService {
 public:
  grpc::ServerUnaryReactor* SendMessage(grpc::CallbackServerContext* context,
                                        const lf::a2a::v1::SendMessageRequest* request,
                                        lf::a2a::v1::SendMessageResponse* response) override {
    *response->mutable_task() = EchoTask(*request);
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerWriteReactor<StreamResponse>* SendStreamingMessage(
      grpc::CallbackServerContext*, const lf::a2a::v1::SendMessageRequest* request) override {
    class Writer final : public grpc::ServerWriteReactor<StreamResponse> {
     public:
      explicit Writer(const lf::a2a::v1::SendMessageRequest& request) {
        Task task = EchoTask(request);
        Task submitted = task;
        submitted.clear_artifacts();
        submitted.mutable_history()->RemoveLast();
        submitted.mutable_status()->clear_message();
        submitted.mutable_status()->set_state(lf::a2a::v1::TASK_STATE_SUBMITTED);
        *events_[0].mutable_task() = submitted;
        auto* working = events_[1].mutable_status_update();
        working->set_task_id(task.id());
        working->set_context_id(task.context_id());
        working->mutable_status()->set_state(lf::a2a::v1::TASK_STATE_WORKING);
        auto* artifact = events_[2].mutable_artifact_update();
        artifact->set_task_id(task.id());
        artifact->set_context_id(task.context_id());
        *artifact->mutable_artifact() = task.artifacts(0);
        artifact->set_last_chunk(true);
        auto* done = events_[3].mutable_status_update();
        done->set_task_id(task.id());
        done->set_context_id(task.context_id());
        *done->mutable_status() = task.status();
        Next();
      }
      void OnWriteDone(bool ok) override {
        if (!ok) return Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "client gone"));
        Next();
      }
      void OnDone() override { delete this; }

     private:
      void Next() {
        if (sent_ == 4) return Finish(grpc::Status::OK);
        StartWrite(&events_[sent_++]);
      }
      StreamResponse events_[4];
      int sent_ = 0;
    };
    return new Writer(*request);
  }
};

std::atomic<bool> stop{false};

}  // namespace

int main(int argc, char** argv) {
  std::string address = "127.0.0.1:0";
  std::string ready_file;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--address" && i + 1 < argc) {
      address = argv[++i];
    } else if (arg == "--ready-file" && i + 1 < argc) {
      ready_file = argv[++i];
    } else {
      std::fprintf(stderr, "usage: bare-echo [--address HOST:PORT] [--ready-file FILE]\n");
      return 2;
    }
  }
  grpc::EnableDefaultHealthCheckService(true);
  Service service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "bare-echo: cannot listen on %s\n", address.c_str());
    return 1;
  }
  if (!ready_file.empty()) {
    std::ofstream(ready_file) << "{\"grpc_address\":\"" << address.substr(0, address.rfind(':'))
                              << ":" << port << "\"}\n";
  }
  signal(SIGTERM, [](int) { stop = true; });
  signal(SIGINT, [](int) { stop = true; });
  while (!stop) pause();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
  return 0;
}
