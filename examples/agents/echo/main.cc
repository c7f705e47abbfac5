// echo-agent: the smallest a2a-mesh agent. Skill "echo": answers with the text
// it was sent, as an artifact, after an optional --delay (during which it can
// be cancelled); with --reply, with a direct Message instead of a task.

#include <CLI/CLI.hpp>
#include <cstdio>

#include "a2amesh/sdk/agent.h"
#include "absl/time/time.h"
#include "common/command_line.h"
#include "common/example_agent.h"

namespace {

lf::a2a::v1::AgentCard EchoCard(const std::string& skill_id) {
  lf::a2a::v1::AgentCard card;
  card.set_name("Echo");
  card.set_description("Answers with the text it was sent.");
  card.set_version("0.1.0");
  card.mutable_capabilities()->set_streaming(true);
  card.add_default_input_modes("text/plain");
  card.add_default_output_modes("text/plain");
  auto* skill = card.add_skills();
  skill->set_id(skill_id);
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
  a2amesh::examples::AgentFlags flags;
  flags.agent_id = "echo";
  a2amesh::examples::AddAgentFlags(app, &flags);
  std::string delay_text = "0s";
  app.add_option("--delay", delay_text, "Wait this long before answering (e.g. 2s)")
      ->capture_default_str();
  std::string skill = "echo";
  app.add_option("--skill", skill, "The skill's id")->capture_default_str();
  bool reply = false;
  app.add_flag("--reply", reply,
               "Answer with a direct Message (\"echo: TEXT\") instead of a task, as chat-style "
               "agents do");
  if (auto exit = a2amesh::examples::ParseCommandLine(app, argc, argv)) return *exit;
  absl::Duration delay;
  if (!absl::ParseDuration(delay_text, &delay)) {
    std::fprintf(stderr, "echo-agent: --delay: '%s' is not a duration\n", delay_text.c_str());
    return 2;
  }
  // Without a delay the handler never blocks: it runs inline, on the thread
  // that received the task.
  return a2amesh::examples::ServeUntilSignal(
      "echo-agent", flags, EchoCard(skill),
      [delay, reply](a2amesh::sdk::TaskContext& task) {
        if (reply && task.Reply(a2amesh::sdk::AgentMessage("echo: " + task.text()))) {
          return;
        }
        task.SetWorking();
        if (delay > absl::ZeroDuration() && task.WaitForCancel(delay)) {
          return;  // the node already marked it canceled
        }
        task.SendArtifact(a2amesh::sdk::TextArtifact("echo", "echo", task.text()));
        task.Complete("echoed by " + task.agent_id() + "@" + task.node_id());
      },
      /*inline_handler=*/delay == absl::ZeroDuration(), /*direct_replies=*/reply);
}
