// hold-agent: an agent for the open-streams benchmark. It registers skill
// "hold" with a large max_concurrency over the AgentHost protocol directly (no
// thread per task), marks every task it is given WORKING and keeps it open
// until the task is cancelled. Thousands of tasks cost it next to nothing, so
// what is measured is the node.
//
//   hold-agent --node 127.0.0.1:7400 [--max-concurrency 10000]

#include <signal.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "a2amesh/v1/agent_host.grpc.pb.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"

int main(int argc, char** argv) {
  std::string node = "127.0.0.1:7400";
  uint32_t max_concurrency = 10000;  // the most a node accepts
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--node" && i + 1 < argc) {
      node = argv[++i];
    } else if (arg == "--max-concurrency" && i + 1 < argc) {
      max_concurrency = static_cast<uint32_t>(std::stoul(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: hold-agent [--node HOST:PORT] [--max-concurrency N]\n");
      return 2;
    }
  }
  auto stub = a2amesh::v1::AgentHost::NewStub(
      grpc::CreateChannel(node, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  auto stream = stub->Connect(&context);
  std::mutex write_mu;
  auto write = [&](const a2amesh::v1::AgentToNode& message) {
    std::lock_guard<std::mutex> lock(write_mu);
    return stream->Write(message);
  };

  a2amesh::v1::AgentToNode hello;
  auto* registration = hello.mutable_register_()->add_agents();
  registration->set_agent_id("hold");
  registration->set_max_concurrency(max_concurrency);
  auto* card = registration->mutable_card();
  card->set_name("hold");
  card->set_description("Keeps every task WORKING until it is cancelled (a benchmark agent).");
  card->set_version("1");
  card->mutable_capabilities()->set_streaming(true);
  card->add_default_input_modes("text/plain");
  card->add_default_output_modes("text/plain");
  auto* skill = card->add_skills();
  skill->set_id("hold");
  skill->set_name("hold");
  skill->set_description("holds the task open");
  skill->add_tags("hold");
  auto* interface = card->add_supported_interfaces();
  interface->set_url("agenthost://hold");
  interface->set_protocol_binding("GRPC");
  interface->set_protocol_version("1.0");
  if (!write(hello)) {
    std::fprintf(stderr, "hold-agent: cannot reach %s\n", node.c_str());
    return 1;
  }
  std::atomic<bool> done{false};
  std::thread heartbeat([&] {
    while (!done) {
      a2amesh::v1::AgentToNode beat;
      beat.mutable_heartbeat()->set_unix_ms(absl::ToUnixMillis(absl::Now()));
      if (!write(beat)) break;
      for (int i = 0; i < 20 && !done; ++i) absl::SleepFor(absl::Milliseconds(100));
    }
  });
  a2amesh::v1::NodeToAgent message;
  int64_t held = 0;
  while (stream->Read(&message)) {
    if (message.has_registered()) {
      std::printf("hold-agent: registered with node %s\n", message.registered().node_id().c_str());
      std::fflush(stdout);
    } else if (message.has_assignment()) {
      a2amesh::v1::AgentToNode update;
      update.mutable_update()->set_task_id(message.assignment().task().id());
      auto* status = update.mutable_update()->mutable_event()->mutable_status_update();
      status->set_task_id(message.assignment().task().id());
      status->set_context_id(message.assignment().task().context_id());
      status->mutable_status()->set_state(lf::a2a::v1::TASK_STATE_WORKING);
      write(update);
      ++held;
    } else if (message.has_cancel()) {
      a2amesh::v1::AgentToNode update;
      update.mutable_update()->set_task_id(message.cancel().task_id());
      auto* status = update.mutable_update()->mutable_event()->mutable_status_update();
      status->set_task_id(message.cancel().task_id());
      status->mutable_status()->set_state(lf::a2a::v1::TASK_STATE_CANCELED);
      write(update);
      --held;
    }
  }
  done = true;
  heartbeat.join();
  grpc::Status status = stream->Finish();
  std::fprintf(stderr, "hold-agent: stream ended (%s); %lld tasks held\n",
               status.error_message().c_str(), static_cast<long long>(held));
  return 0;
}
