// echo-agent: the smallest a2a-mesh agent. Skill "echo": answers with the text
// it was sent, as an artifact, after an optional --delay (during which it can
// be cancelled).

#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "a2amesh/sdk/agent.h"
#include "absl/time/time.h"
#include "core/log.h"

namespace {

lf::a2a::v1::AgentCard EchoCard() {
  lf::a2a::v1::AgentCard card;
  card.set_name("Echo");
  card.set_description("Answers with the text it was sent.");
  card.set_version("0.1.0");
  card.mutable_capabilities()->set_streaming(true);
  card.add_default_input_modes("text/plain");
  card.add_default_output_modes("text/plain");
  auto* skill = card.add_skills();
  skill->set_id("echo");
  skill->set_name("Echo");
  skill->set_description("Returns the input text unchanged.");
  skill->add_tags("echo");
  skill->add_tags("text");
  skill->add_examples("hello");
  return card;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"echo-agent: an a2a-mesh agent with one skill, echo"};
  std::string node = "127.0.0.1:7400";
  std::string agent_id = "echo";
  int max_concurrency = 8;
  std::string delay_text = "0s";
  app.add_option("--node", node, "The meshd node's gRPC address")->capture_default_str();
  app.add_option("--agent-id", agent_id, "This agent's id on the node")->capture_default_str();
  app.add_option("--max-concurrency", max_concurrency, "Tasks run at once")->capture_default_str();
  app.add_option("--delay", delay_text, "Wait this long before answering (e.g. 2s)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  absl::Duration delay;
  if (!absl::ParseDuration(delay_text, &delay)) {
    std::fprintf(stderr, "echo-agent: --delay: '%s' is not a duration\n", delay_text.c_str());
    return 2;
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  a2amesh::sdk::AgentOptions options;
  options.node = node;
  options.instance = "echo-agent";
  options.agents.push_back(
      {agent_id, EchoCard(), max_concurrency, [delay](a2amesh::sdk::TaskContext& task) {
         task.SetWorking();
         if (delay > absl::ZeroDuration() && task.WaitForCancel(delay)) {
           return;  // the node already marked it canceled
         }
         task.SendArtifact(a2amesh::sdk::TextArtifact("echo", "echo", task.text()));
         task.Complete();
       }});
  absl::StatusOr<std::unique_ptr<a2amesh::sdk::Agent>> agent =
      a2amesh::sdk::Agent::Start(std::move(options));
  if (!agent.ok()) {
    std::fprintf(stderr, "echo-agent: %s\n", std::string(agent.status().message()).c_str());
    return 2;
  }
  A2AMESH_LOG(Info, "echo-agent started").With("node", node).With("agent", agent_id);
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  return 0;
}
